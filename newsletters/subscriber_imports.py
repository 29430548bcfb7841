"""Imports from the admin: a CSV file checked and previewed, then applied by a task, with its record of consent.

The rules are import_subscribers' (newsletters.subscribers_csv, the one code path); what
this adds is the record (newsletters.models.SubscriberImport: who, when, which file, on what
grounds) and the run as a task, whose progress a page shows while it runs. In "consent" mode
the readers are activated as with `--confirmed`; in "invite" mode they stay pending and the
digest app mails each one an invitation to confirm (newsletters.signals.subscribers_imported).
"""

import datetime

from django.db import transaction
from django.utils import timezone

from newsletters.exceptions import NewslettersError
from newsletters.importing import utf8_decode
from newsletters.models import ImportMode, ImportStatus, Newsletter, SubscriberImport
from newsletters.signals import subscribers_imported
from newsletters.subscribers_csv import MAX_CSV_BYTES, ImportReport, subscribers_check, subscribers_import

# How many refused rows an import keeps to show (the count says how many there were).
ERRORS_KEPT = 1000
PREVIEW_KEPT = datetime.timedelta(days=1)


def upload_read(*, data: bytes, file_name: str) -> str:
    """Decode an uploaded CSV file as import_subscribers reads one; refuse it whole, naming the line."""
    if len(data) > MAX_CSV_BYTES:
        raise NewslettersError(f"{file_name} is larger than {MAX_CSV_BYTES // 1024 // 1024} MB; split it.")
    return utf8_decode(
        data,
        name=file_name,
        advice="nothing was imported. Save the file as UTF-8 (in a spreadsheet: CSV UTF-8) and upload it again",
    )


def subscriber_import_preview(
    *, newsletter: Newsletter, file_name: str, text: str, user, now: datetime.datetime
) -> tuple[SubscriberImport, list[dict], ImportReport]:
    """Check an uploaded file and keep it for starting; return the record, the good rows and the refused ones.

    No subscriber or subscription changes; a file that cannot be read at all raises
    NewslettersError and nothing is kept.
    """
    valid, report = subscribers_check(text=text, newsletter=newsletter)
    # Previews never started hold a whole list of addresses and record no consent: keep them a day.
    SubscriberImport.objects.filter(status=ImportStatus.PREVIEW, created_at__lt=now - PREVIEW_KEPT).delete()
    record = SubscriberImport.objects.create(
        newsletter=newsletter,
        file_name=file_name[:255],
        imported_by=user,
        imported_by_name=user.get_username(),
        created_at=now,
        text=text,
        status=ImportStatus.PREVIEW,
        rows_total=len(valid),
        counts=dict(report.counts),
        errors=report.errors[:ERRORS_KEPT],
    )
    return record, valid, report


def subscriber_import_start(*, record: SubscriberImport, mode: str, user, now: datetime.datetime) -> bool:
    """Record who started a previewed import, when and on what grounds; return False if it was started already.

    The caller enqueues the task (newsletters.tasks.subscribers_import_task) after this.
    """
    with transaction.atomic():
        return bool(
            SubscriberImport.objects.filter(pk=record.pk, status=ImportStatus.PREVIEW).update(
                status=ImportStatus.QUEUED,
                mode=ImportMode(mode),
                imported_by=user,
                imported_by_name=user.get_username(),
                created_at=now,
            )
        )


def subscriber_import_run(*, import_id: int, now: datetime.datetime) -> dict:
    """Apply a started import, keeping its progress and counts on its record; return the counts.

    Run once: a task delivered twice finds it no longer queued and does nothing. Each chunk
    commits on its own, so the progress page sees it move; an import that stops half-way is
    finished by importing the same file again (an import changes nothing twice).
    """
    if not SubscriberImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, rows_done=0
    ):
        return {}
    record = SubscriberImport.objects.select_related("newsletter").get(pk=import_id)
    records = SubscriberImport.objects.filter(pk=import_id)

    def progress(done: int, total: int) -> None:
        records.update(rows_done=done, rows_total=total)

    try:
        report = subscribers_import(
            text=record.text,
            confirmed=record.mode == ImportMode.CONSENT,
            now=now,
            progress=progress,
            newsletter=record.newsletter,
            subscriber_import=record,
        )
    except NewslettersError as error:
        records.update(status=ImportStatus.FAILED, failure=str(error), text="", finished_at=timezone.now())
        return {}
    counts = dict(report.counts)
    if record.mode == ImportMode.INVITE:
        for _, planned in subscribers_imported.send(sender=SubscriberImport, subscriber_import=record, now=now):
            counts["invitations"] = counts.get("invitations", 0) + (planned or 0)
    records.update(
        status=ImportStatus.DONE,
        counts=counts,
        errors=report.errors[:ERRORS_KEPT],
        text="",
        finished_at=timezone.now(),
    )
    return counts
