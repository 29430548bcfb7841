"""Imports: an issue from a Markdown file with front matter, subscribers from CSV.

Both read untrusted files (an editor's folder, a spreadsheet export): every path, byte and
field is checked before anything is written, and every refusal names the file and line.
"""

import csv
import datetime
import io
import os
import re
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify

from newsletters.exceptions import MarkupError, NewslettersError
from newsletters.markup import markdown_to_html, markup_check
from newsletters.models import (
    Attachment,
    Frequency,
    Issue,
    IssueStatus,
    Newsletter,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletters.validators import email_normalize, validate_attachment_size, validate_single_line, validate_timezone

# --------------------------------------------------------------------- issue files

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?", re.S | re.M)
_FIRST_HEADING = re.compile(r"\A\s*#[ \t]+(.+?)[ \t#]*\r?\n")


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML that keeps dates as text: datetime_parse reads them, and names the key when one is impossible."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class IssueSource:
    """An issue as read from a Markdown file with optional YAML front matter."""

    title: str
    body: str
    slug: str
    newsletter: str | None
    publish_at: datetime.datetime | None
    attachments: list[Path]


def issue_source_parse(*, text: str, path: Path) -> IssueSource:
    """Split front matter from Markdown; take the title from it or from the first heading."""
    meta: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            meta = yaml.load(match.group(1), Loader=_FrontMatterLoader) or {}  # noqa: S506 (a SafeLoader)
        except yaml.YAMLError as error:
            raise NewslettersError(f"{path}: front matter is not valid YAML: {error}") from None
        if not isinstance(meta, dict):
            raise NewslettersError(f"{path}: front matter must be key: value lines.")
        text = text[match.end() :]
    unknown = set(meta) - {"title", "newsletter", "publish_at", "date", "attachments", "slug"}
    if unknown:
        raise NewslettersError(f"{path}: unknown front matter key(s): {', '.join(sorted(map(str, unknown)))}.")
    title = str(meta.get("title") or "").strip()
    if not title:
        heading = _FIRST_HEADING.match(text)
        if not heading:
            raise NewslettersError(f"{path}: no title: add 'title:' to the front matter or start with a '# Heading'.")
        title = heading.group(1).strip()
        text = text[heading.end() :]
    attachments = meta.get("attachments") or []
    if isinstance(attachments, str):
        attachments = [attachments]
    if not isinstance(attachments, list) or not all(isinstance(name, str) and name for name in attachments):
        raise NewslettersError(f"{path}: 'attachments:' must be a file name or a list of file names.")
    publish_at = meta.get("publish_at", meta.get("date"))
    slug_source = str(meta.get("slug") or path.stem)
    slug = slugify(slug_source, allow_unicode=True)
    if not slug:
        raise NewslettersError(
            f"{path}: cannot make a slug (the issue's URL name) from {slug_source!r}; add 'slug:' to the front matter."
        )
    return IssueSource(
        title=title,
        body=text.strip() + "\n",
        slug=slug,
        newsletter=str(meta["newsletter"]) if meta.get("newsletter") else None,
        publish_at=datetime_parse(publish_at, what=f"{path}: publish_at") if publish_at else None,
        attachments=[attachment_beside(path, name) for name in attachments],
    )


def attachment_beside(markdown_path: Path, name: str) -> Path:
    """Resolve a front-matter attachment; it must be a file inside the Markdown file's own directory.

    Front matter travels with the file (an editor may send one to the operator), so it
    names files next to it, never elsewhere: absolute paths, `..` escapes and symlinks
    leading out (to /etc/passwd, /proc/self/environ, the settings) are refused.
    """
    what = f"{markdown_path}: attachment {name!r}"
    if "\x00" in name:
        raise NewslettersError(f"{what}: the name contains a NUL byte.")
    if Path(name).is_absolute():
        raise NewslettersError(f"{what}: give a path relative to the Markdown file, not an absolute one.")
    home = markdown_path.parent.resolve()
    try:
        resolved = (home / name).resolve(strict=True)
    except FileNotFoundError:
        raise NewslettersError(f"{what} does not exist.") from None
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise NewslettersError(f"{what}: cannot be read: {error}") from None
    if not resolved.is_relative_to(home):
        raise NewslettersError(
            f"{what} resolves to {resolved}, outside {home}; attachments must be files in the Markdown file's "
            "directory (pass other files with --attach)."
        )
    return resolved


def datetime_parse(value, *, what: str) -> datetime.datetime:
    """Parse an ISO 8601 date-time (or a YAML one); naive values are in TIME_ZONE."""
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, datetime.date):
        parsed = datetime.datetime.combine(value, datetime.time())
    else:
        text = str(value).strip()
        shown = repr(text if len(text) <= 60 else text[:57] + "...")
        try:
            parsed = parse_datetime(text)
        except ValueError as error:  # well-formed but impossible: month 13, offset +25:00
            raise NewslettersError(f"{what}: {shown} is not a valid date-time: {error}.") from None
        if parsed is None:
            raise NewslettersError(f"{what}: {shown} is not an ISO 8601 date-time such as 2026-05-01T09:00+02:00.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def issue_upsert_from_file(
    *,
    path: Path,
    now: datetime.datetime,
    newsletter_slug: str | None = None,
    publish_at: datetime.datetime | None = None,
    attach: list[Path] | None = None,
    draft: bool = False,
) -> tuple[Issue, bool]:
    """Create or update the issue a Markdown file describes; return it and whether it is new.

    The issue is found again by (newsletter, slug), the slug coming from the front matter or
    the file name, so running twice updates instead of duplicating. An already published
    issue keeps its publish time unless one is given: moving it would put it in a new
    digest window and send it again.
    """
    text = _markdown_read(path)
    source = issue_source_parse(text=text, path=path)
    try:
        markup_check(source.body, first_line=text[: text.find(source.body.strip())].count("\n") + 1)
        markdown_to_html(source.body)  # rendered once now (and cached): its cost is bounded
    except MarkupError as error:
        raise NewslettersError(f"{path}: {error}") from None
    newsletter = _newsletter_pick(newsletter_slug or source.newsletter)
    # Every file is opened and checked before anything is written; the open handles are
    # what gets copied, so a file swapped after its check is never the one attached.
    files = [_attachment_open(file_path) for file_path in [*source.attachments, *(attach or [])]]
    try:
        with transaction.atomic():
            issue = Issue.objects.select_for_update().filter(newsletter=newsletter, slug=source.slug).first()
            created = issue is None
            if created:
                issue = Issue(newsletter=newsletter, slug=source.slug)
            issue.title = source.title
            issue.body = source.body
            when = publish_at or source.publish_at
            if draft:
                issue.status = IssueStatus.DRAFT
                issue.publish_at = when or issue.publish_at
            elif when or issue.status != IssueStatus.PUBLISHED:
                issue.status = IssueStatus.PUBLISHED
                issue.publish_at = when or now
            try:
                issue.full_clean(exclude=["author"], validate_unique=False, validate_constraints=False)
            except ValidationError as error:
                raise NewslettersError(f"{path}: {_messages(error)}") from None
            issue.save()
            issue.attachments.all().delete()
            for file_path, handle in files:
                Attachment.objects.create(
                    issue=issue, file=File(handle, name=file_path.name), display_name=file_path.name
                )
    finally:
        for _, handle in files:
            handle.close()
    return issue, created


# An issue is read whole into memory and mailed inside every digest; Gmail clips a
# message at about 100 KB, so a Markdown file far above this is a mistake.
MAX_MARKDOWN_BYTES = 1024 * 1024


def _markdown_read(path: Path) -> str:
    text = utf8_file_read(path, limit=MAX_MARKDOWN_BYTES, too_big="an issue must be smaller", advice="save it as UTF-8")
    if "\x00" in text:
        raise NewslettersError(
            f"{path}: line {text[: text.index(chr(0))].count(chr(10)) + 1} contains a NUL byte; is it a text file?"
        )
    return text


def utf8_file_read(path: Path, *, limit: int, too_big: str, advice: str) -> str:
    """Read a whole regular file as UTF-8 (with or without BOM); a byte that is not UTF-8 is named with its line."""
    with _regular_file_open(path, what=f"Cannot read {path}:") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NewslettersError(f"{path} is larger than {limit // 1024} KB; {too_big}.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise NewslettersError(f"{path}: line {line} is not UTF-8 (byte {data[error.start]:#04x}); {advice}.") from None


def _regular_file_open(path: Path, *, what: str):
    """Open a file for reading; refuse anything but a regular file (devices, FIFOs, directories)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise NewslettersError(f"{what} does not exist.") from None
    except OSError as error:
        raise NewslettersError(f"{what} cannot be read: {error.strerror or error}.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NewslettersError(f"{what} is not a regular file (a device, pipe or directory).")
    return os.fdopen(fd, "rb")


def _attachment_open(file_path: Path):
    """Open one file to attach and check its size; return (path, open handle)."""
    handle = _regular_file_open(file_path, what=f"Attachment {file_path}")
    try:
        _check(validate_attachment_size, _Sized(file_path.name, os.fstat(handle.fileno()).st_size), what=str(file_path))
    except NewslettersError:
        handle.close()
        raise
    return file_path, handle


def _messages(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


@dataclass(frozen=True)
class _Sized:
    """What validate_attachment_size reads of an uploaded file."""

    name: str
    size: int


def _newsletter_pick(slug: str | None) -> Newsletter:
    if slug:
        try:
            if "\x00" in slug:  # PostgreSQL refuses NUL in a query parameter
                raise Newsletter.DoesNotExist
            return Newsletter.objects.get(slug=slug)
        except Newsletter.DoesNotExist:
            known = ", ".join(Newsletter.objects.values_list("slug", flat=True)) or "none yet"
            raise NewslettersError(f"No newsletter {slug!r}; known: {known}.") from None
    newsletters = list(Newsletter.objects.all()[:2])
    if len(newsletters) != 1:
        raise NewslettersError("Several newsletters exist (or none): say which with --newsletter or 'newsletter:'.")
    return newsletters[0]


def _check(validator, value, *, what: str) -> None:
    try:
        validator(value)
    except ValidationError as error:
        raise NewslettersError(f"{what}: {' '.join(error.messages)}") from None


# ----------------------------------------------------------------------- subscribers

IMPORT_COLUMNS = ("email", "name", "timezone", "newsletter", "frequency")
# A million readers' CSV is about 80 MB; the whole file is read and checked before any row is written.
MAX_CSV_BYTES = 200 * 1024 * 1024
# What the admin's CSV export puts before a cell a spreadsheet would run as a formula.
_FORMULA_GUARD = re.compile(r"\A'(?=[=+\-@\t\r])")


@dataclass
class ImportReport:
    """What an import did, row by row and in totals."""

    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['rows']} rows: {c['subscribers_created']} subscribers created, "
            f"{c['subscribers_updated']} updated; {c['subscriptions_created']} subscriptions created, "
            f"{c['subscriptions_updated']} updated; {c['unchanged']} unchanged, "
            f"{c['skipped_opted_out']} skipped (unsubscribed or suppressed), {c['invalid']} invalid."
        )


def csv_file_read(path: Path) -> str:
    """Read a whole CSV file as UTF-8 (with or without BOM); refuse what cannot be read, naming the line."""
    return utf8_file_read(
        path,
        limit=MAX_CSV_BYTES,
        too_big="split it",
        advice="nothing was imported. Save the file as UTF-8 (in a spreadsheet: CSV UTF-8) and import it again",
    )


def subscribers_import(
    *, text: str, confirmed: bool, now: datetime.datetime, progress: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Create or update subscribers and subscriptions from CSV text; skip and report invalid rows.

    Three passes: parse the whole file (if it is not CSV, nothing is imported), validate
    every row (bad rows are reported by line and skipped), then apply the good rows in one
    transaction. Never re-subscribes an address that unsubscribed or was suppressed, never
    turns an active subscriber back into a pending one, and never enrols anyone in a
    newsletter without --confirmed: re-running an import changes nothing. `progress(done, total)`
    follows the last pass.
    """
    rows = _csv_rows(text)
    if not rows:
        raise NewslettersError(f"The file is empty; expected a header with the columns {', '.join(IMPORT_COLUMNS)}.")
    header_line, header = rows[0]
    header = [name.strip().lower() for name in header]
    missing = [name for name in ("email", "newsletter") if name not in header]
    if missing:
        raise NewslettersError(
            f"The CSV header lacks {', '.join(missing)}; expected columns {', '.join(IMPORT_COLUMNS)}."
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise NewslettersError(f"The CSV header repeats {', '.join(repeated)}.")

    report = ImportReport()
    newsletters = {n.slug: n for n in Newsletter.objects.all()}
    seen: dict[str, tuple[int, str, str]] = {}
    pairs: dict[tuple[str, int], int] = {}
    valid = []
    for line, cells in rows[1:]:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        report.counts["rows"] += 1
        try:
            if len(cells) > len(header):
                raise NewslettersError("more fields than the header has columns")
            row = dict(zip(header, (_FORMULA_GUARD.sub("", cell) for cell in cells), strict=False))
            values = _import_row_validate(row, newsletters)
            _import_row_unique(values, line=line, seen=seen, pairs=pairs)
        except NewslettersError as error:
            report.counts["invalid"] += 1
            report.errors.append(f"line {line}: {error}")
            continue
        valid.append(values)
    with transaction.atomic():
        for done, values in enumerate(valid, start=1):
            _import_row_apply(values, confirmed=confirmed, now=now, counts=report.counts)
            if progress and (done % 200 == 0 or done == len(valid)):
                progress(done, len(valid))
    return report


def subscriber_enrol(*, email: str, name: str, tz: str, choices: dict[int, str], now: datetime.datetime) -> Counter:
    """Subscribe one reader who consented elsewhere, by the rules of `import_subscribers --confirmed`.

    The values must be valid already (newsletters.forms.SubscribeForm checks them). Like the
    import, it never re-subscribes an address or a subscription that opted out; the counts say
    what it did (`skipped_opted_out` for those).
    """
    counts: Counter = Counter()
    with transaction.atomic():
        for newsletter in Newsletter.objects.filter(pk__in=choices).order_by("pk"):
            values = {"email": email, "name": name, "timezone": tz, "newsletter": newsletter}
            _import_row_apply({**values, "frequency": choices[newsletter.pk]}, confirmed=True, now=now, counts=counts)
    return counts


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    """Parse CSV text into (starting line number, cells) rows; refuse the file if it is not CSV."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_BYTES))  # long fields get a row error, not csv.Error
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    start = 1
    try:
        for cells in reader:
            rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as error:
        raise NewslettersError(f"line {start}: not valid CSV ({error}); nothing was imported.") from None
    return rows


def _import_row_unique(values: dict, *, line: int, seen: dict, pairs: dict) -> None:
    """One address has one name and time zone, and one row per newsletter, in a file."""
    key = values["email"].lower()
    first = seen.setdefault(key, (line, values["name"], values["timezone"]))
    if (first[1], first[2]) != (values["name"], values["timezone"]):
        raise NewslettersError(
            f"{values['email']} is on line {first[0]} with another name or time zone; "
            "give each address one name and time zone"
        )
    pair = (key, values["newsletter"].pk)
    if pair in pairs:
        raise NewslettersError(f"{values['email']} and {values['newsletter'].slug} are already on line {pairs[pair]}")
    pairs[pair] = line


def _import_row_validate(row: dict, newsletters: dict[str, Newsletter]) -> dict:
    email = (row.get("email") or "").strip()
    if not email:
        raise NewslettersError("email is empty")
    if len(email) > 254:
        raise NewslettersError("email is longer than 254 characters")
    _check(validate_single_line, email, what=f"email {email[:60]!r}")
    _check(validate_email, email, what=f"email {email!r}")
    email = _normalized(email)
    name = (row.get("name") or "").strip()
    _check(validate_single_line, name, what="name")
    if len(name) > 200:
        raise NewslettersError("name is longer than 200 characters")
    tz = (row.get("timezone") or "").strip() or "UTC"
    if len(tz) > 64:
        raise NewslettersError("timezone is longer than 64 characters")
    _check(validate_timezone, tz, what="timezone")
    slug = (row.get("newsletter") or "").strip()
    if slug not in newsletters:
        raise NewslettersError(f"unknown newsletter {slug[:60]!r}")
    frequency = (row.get("frequency") or "").strip().lower() or Frequency.WEEKLY
    if frequency not in Frequency.values:
        raise NewslettersError(f"frequency {frequency[:30]!r} is not one of {', '.join(Frequency.values)}")
    return {"email": email, "name": name, "timezone": tz, "newsletter": newsletters[slug], "frequency": frequency}


def _normalized(email: str) -> str:
    try:
        return email_normalize(email)
    except ValidationError as error:
        raise NewslettersError(f"email {email!r}: {' '.join(error.messages)}") from None


def _import_row_apply(values: dict, *, confirmed: bool, now: datetime.datetime, counts: Counter) -> None:
    subscriber = Subscriber.objects.select_for_update().filter(email__iexact=values["email"]).first()
    if subscriber and subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED):
        counts["skipped_opted_out"] += 1
        return
    subscriber = subscriber or Subscriber(email=values["email"], status=SubscriberStatus.PENDING)
    before = (subscriber.pk, subscriber.name, subscriber.timezone, subscriber.status)
    subscriber.name = values["name"]
    subscriber.timezone = values["timezone"]
    if confirmed and subscriber.status == SubscriberStatus.PENDING:
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.confirmed_at = now
    subscriber_outcome = _outcome(before, (subscriber.pk, subscriber.name, subscriber.timezone, subscriber.status))
    if subscriber_outcome != "unchanged":
        subscriber.save()

    subscription = Subscription.objects.filter(subscriber=subscriber, newsletter=values["newsletter"]).first()
    if subscription and subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        counts["skipped_opted_out"] += 1
        return
    subscription = subscription or Subscription(subscriber=subscriber, newsletter=values["newsletter"])
    before = (subscription.pk, subscription.frequency, subscription.status)
    subscription.frequency = values["frequency"]
    # Only --confirmed says the reader opted in to this newsletter: an active reader's new
    # subscription from a plain import stays pending, like any other.
    if confirmed and subscriber.status == SubscriberStatus.ACTIVE and subscription.status == SubscriptionStatus.PENDING:
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.created_at = now  # its first digest reaches back from now, not from an old import
    subscription_outcome = _outcome(before, (subscription.pk, subscription.frequency, subscription.status))
    if subscription_outcome != "unchanged":
        subscription.save()
    if subscriber_outcome == subscription_outcome == "unchanged":
        counts["unchanged"] += 1
    else:
        counts[f"subscribers_{subscriber_outcome}"] += 1
        counts[f"subscriptions_{subscription_outcome}"] += 1


def _outcome(before: tuple, after: tuple) -> str:
    """Name what a save would do: the first item of each tuple is the primary key."""
    if before[0] is None:
        return "created"
    return "unchanged" if before == after else "updated"
