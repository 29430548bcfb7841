"""Imports: an issue from a Markdown file with front matter, subscribers from CSV.

Both read untrusted files (an editor's folder, a spreadsheet export): every path, byte and
field is checked before anything is written, and every refusal names the file and line.
"""

import datetime
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify

from newsletters.exceptions import MarkupError, NewslettersError
from newsletters.markup import markdown_to_html, markup_check
from newsletters.models import (
    Attachment,
    Issue,
    IssueStatus,
    Newsletter,
)
from newsletters.validators import validate_attachment_size

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
    return utf8_decode(data, name=str(path), advice=advice)


def utf8_decode(data: bytes, *, name: str, advice: str) -> str:
    """Decode a file's bytes as UTF-8 (with or without BOM); a byte that is not UTF-8 is named with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise NewslettersError(f"{name}: line {line} is not UTF-8 (byte {data[error.start]:#04x}); {advice}.") from None


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
        value_check(
            validate_attachment_size, _Sized(file_path.name, os.fstat(handle.fileno()).st_size), what=str(file_path)
        )
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


def value_check(validator, value, *, what: str) -> None:
    try:
        validator(value)
    except ValidationError as error:
        raise NewslettersError(f"{what}: {' '.join(error.messages)}") from None
