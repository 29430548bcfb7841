"""Subscribers from a CSV file (manage.py import_subscribers): every row checked before any is written."""

import contextlib
import csv
import datetime
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models.functions import Lower

from newsletters.exceptions import NewslettersError
from newsletters.importing import utf8_file_read, value_check
from newsletters.models import (
    Frequency,
    Newsletter,
    Subscriber,
    SubscriberImport,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletters.validators import email_normalize, validate_single_line, validate_timezone

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


def subscribers_check(*, text: str, newsletter: Newsletter | None = None) -> tuple[list[dict], ImportReport]:
    """Parse and validate CSV text without writing anything; return the good rows and a report of the bad ones.

    With `newsletter` (an import from its admin page) the `newsletter` column may be left
    out or empty: such rows go to that newsletter, and a row naming another one is refused.
    """
    rows = _csv_rows(text)
    if not rows:
        raise NewslettersError(f"The file is empty; expected a header with the columns {', '.join(IMPORT_COLUMNS)}.")
    header_line, header = rows[0]
    header = [name.strip().lower() for name in header]
    missing = [name for name in ("email", "newsletter") if name not in header and not (newsletter and name != "email")]
    if missing:
        raise NewslettersError(
            f"The CSV header lacks {', '.join(missing)}; expected columns {', '.join(IMPORT_COLUMNS)}."
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise NewslettersError(f"The CSV header repeats {', '.join(repeated)}.")

    report = ImportReport()
    newsletters = {newsletter.slug: newsletter} if newsletter else {n.slug: n for n in Newsletter.objects.all()}
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
            if newsletter:
                named = (row.get("newsletter") or "").strip() or newsletter.slug
                if named != newsletter.slug:
                    raise NewslettersError(f"this import is for {newsletter.slug!r}, not {named[:60]!r}")
                row["newsletter"] = named
            values = _import_row_validate(row, newsletters)
            _import_row_unique(values, line=line, seen=seen, pairs=pairs)
        except NewslettersError as error:
            report.counts["invalid"] += 1
            report.errors.append(f"line {line}: {error}")
            continue
        values["line"] = line
        valid.append(values)
    return valid, report


def subscribers_import(
    *,
    text: str,
    confirmed: bool,
    now: datetime.datetime,
    progress: Callable[[int, int], None] | None = None,
    newsletter: Newsletter | None = None,
    subscriber_import: SubscriberImport | None = None,
) -> ImportReport:
    """Create or update subscribers and subscriptions from CSV text; skip and report invalid rows.

    Three passes: parse the whole file (if it is not CSV, nothing is imported), validate
    every row (bad rows are reported by line and skipped), then apply the good rows in
    chunks of bulk queries, in one transaction. Never re-subscribes an address that
    unsubscribed or was suppressed, never turns an active subscriber back into a pending
    one, and never enrols anyone in a newsletter without --confirmed: re-running an import
    changes nothing. `progress(done, total)` follows the last pass.

    An import from the admin (`subscriber_import`) commits each chunk on its own, so its
    progress can be seen while it runs; the subscriptions it creates or activates, and the
    pending ones it finds unclaimed, name it (its record of consent, or its invitations).
    """
    valid, report = subscribers_check(text=text, newsletter=newsletter)
    whole = transaction.atomic() if subscriber_import is None else contextlib.nullcontext()
    with whole:
        for start in range(0, len(valid), CHUNK):
            chunk = valid[start : start + CHUNK]
            with transaction.atomic():
                _rows_apply(chunk, confirmed=confirmed, now=now, counts=report.counts, source=subscriber_import)
            if progress:
                progress(start + len(chunk), len(valid))
    return report


def subscriber_enrol(*, email: str, name: str, tz: str, choices: dict[int, str], now: datetime.datetime) -> Counter:
    """Subscribe one reader who consented elsewhere, by the rules of `import_subscribers --confirmed`.

    The values must be valid already (newsletters.forms.SubscribeForm checks them). Like the
    import, it never re-subscribes an address or a subscription that opted out; the counts say
    what it did (`skipped_opted_out` for those).
    """
    counts: Counter = Counter()
    rows = [
        {"email": email, "name": name, "timezone": tz, "newsletter": newsletter, "frequency": choices[newsletter.pk]}
        for newsletter in Newsletter.objects.filter(pk__in=choices).order_by("pk")
    ]
    with transaction.atomic():
        _rows_apply(rows, confirmed=True, now=now, counts=counts, source=None)
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
    value_check(validate_single_line, email, what=f"email {email[:60]!r}")
    value_check(validate_email, email, what=f"email {email!r}")
    email = _normalized(email)
    name = (row.get("name") or "").strip()
    value_check(validate_single_line, name, what="name")
    if len(name) > 200:
        raise NewslettersError("name is longer than 200 characters")
    tz = (row.get("timezone") or "").strip() or "UTC"
    if len(tz) > 64:
        raise NewslettersError("timezone is longer than 64 characters")
    value_check(validate_timezone, tz, what="timezone")
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


# Rows applied per round of bulk queries: a few queries per chunk instead of four per row.
CHUNK = 1000


def _rows_apply(
    rows: list[dict], *, confirmed: bool, now: datetime.datetime, counts: Counter, source: SubscriberImport | None
) -> None:
    """Apply checked rows (one row per address and newsletter) with bulk reads and writes."""
    keys = {values["email"].lower() for values in rows}
    subscribers = {
        subscriber.email.lower(): subscriber
        for subscriber in Subscriber.objects.select_for_update()
        .annotate(key=Lower("email"))
        .filter(key__in=keys)
        .order_by("pk")
    }
    created, updated, touched, live = [], [], set(), []
    for values in rows:
        key = values["email"].lower()
        subscriber = subscribers.get(key)
        if subscriber and subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED):
            counts["skipped_opted_out"] += 1
            continue
        if key in touched:  # its second newsletter: the first row already wrote it
            live.append((values, subscriber, "unchanged"))
            continue
        touched.add(key)
        subscriber = subscriber or Subscriber(email=values["email"], status=SubscriberStatus.PENDING)
        subscribers[key] = subscriber
        before = (subscriber.pk, subscriber.name, subscriber.timezone, subscriber.status)
        subscriber.name = values["name"]
        subscriber.timezone = values["timezone"]
        if confirmed and subscriber.status == SubscriberStatus.PENDING:
            subscriber.status = SubscriberStatus.ACTIVE
            subscriber.confirmed_at = now
        outcome = _outcome(before, (subscriber.pk, subscriber.name, subscriber.timezone, subscriber.status))
        {"created": created, "updated": updated}.get(outcome, []).append(subscriber)
        live.append((values, subscriber, outcome))
    Subscriber.objects.bulk_create(created)
    _rows_update(Subscriber, updated, ["name", "timezone", "status", "confirmed_at"])

    subscriptions = {
        (subscription.subscriber_id, subscription.newsletter_id): subscription
        for subscription in Subscription.objects.filter(
            subscriber_id__in=[subscriber.pk for _, subscriber, _ in live],
            newsletter_id__in={values["newsletter"].pk for values, _, _ in live},
        )
    }
    created, updated = [], []
    for values, subscriber, subscriber_outcome in live:
        subscription = subscriptions.get((subscriber.pk, values["newsletter"].pk))
        if subscription and subscription.status == SubscriptionStatus.UNSUBSCRIBED:
            counts["skipped_opted_out"] += 1
            continue
        subscription = subscription or Subscription(
            subscriber=subscriber, newsletter=values["newsletter"], subscriber_import=source
        )
        before = (subscription.pk, subscription.frequency, subscription.status)
        subscription.frequency = values["frequency"]
        # Only --confirmed says the reader opted in to this newsletter: an active reader's new
        # subscription from a plain import stays pending, like any other.
        if (
            confirmed
            and subscriber.status == SubscriberStatus.ACTIVE
            and subscription.status == SubscriptionStatus.PENDING
        ):
            subscription.status = SubscriptionStatus.ACTIVE
            subscription.created_at = now  # its first digest reaches back from now, not from an old import
            subscription.subscriber_import = source
        subscription_outcome = _outcome(before, (subscription.pk, subscription.frequency, subscription.status))
        claimed = source and subscription.status == SubscriptionStatus.PENDING and not subscription.subscriber_import_id
        if claimed:  # pending from an earlier import: this one may invite it
            subscription.subscriber_import = source
        if subscription_outcome == "created":
            created.append(subscription)
        elif subscription_outcome == "updated" or claimed:
            subscription.updated_at = now
            updated.append(subscription)
        if subscriber_outcome == subscription_outcome == "unchanged":
            counts["unchanged"] += 1
        else:
            counts[f"subscribers_{subscriber_outcome}"] += 1
            counts[f"subscriptions_{subscription_outcome}"] += 1
    Subscription.objects.bulk_create(created)
    _rows_update(Subscription, updated, ["frequency", "status", "created_at", "subscriber_import", "updated_at"])


def _rows_update(model, objects: list, names: list[str]) -> None:
    """Write these fields of these rows with one UPDATE … FROM a VALUES list a chunk (PostgreSQL, SQLite 3.33+).

    Django's bulk_update builds a CASE of one WHEN per row and field, which costs more than
    the rest of an import together; a join against a VALUES list costs one row each.
    """
    if not objects:
        return
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    # PostgreSQL types a VALUES list from its parameters: cast each column to its field's type.
    cast = "::{}" if connection.vendor == "postgresql" else ""
    assignments = ", ".join(
        f"{quote(field.column)} = v.{quote(field.column)}{cast.format(field.db_type(connection)) if cast else ''}"
        for field in fields
    )
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(objects), CHUNK):
            batch = objects[start : start + CHUNK]
            params = [
                value
                for obj in batch
                for value in [
                    obj.pk,
                    *(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields),
                ]
            ]
            cursor.execute(
                f"WITH v(id, {columns}) AS (VALUES {', '.join([row] * len(batch))}) "
                f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{quote('id')} = v.id",
                params,
            )


def _outcome(before: tuple, after: tuple) -> str:
    """Name what a save would do: the first item of each tuple is the primary key."""
    if before[0] is None:
        return "created"
    return "unchanged" if before == after else "updated"
