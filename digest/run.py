"""One digest run: schedule → plan (aggregation) → claim, render once per group, send, record.

Every time-dependent decision uses the run's `now`, so `send_digests --now` replays a
moment exactly.
"""

import datetime
import hashlib
import logging
import smtplib
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.mail import mail_admins
from django.db import DatabaseError, transaction
from django.db.models import Prefetch

from digest.aggregation import Window, deliveries_plan
from digest.conf import digest_settings
from digest.delivery import batch_send
from digest.exceptions import DigestError, RenderError
from digest.journal import Journal
from digest.ledger import claimant_new, deliveries_claim, deliveries_recover, deliveries_waiting, outcomes_record
from digest.models import Delivery, Rendering
from digest.rendering import FileToSend, RenderedDigest, digest_render
from digest.scheduling import newsletters_selected, subscriptions_schedule
from newsletters.models import Attachment, Issue, IssueStatus

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """Counts of one run, as the command prints them."""

    due: int = 0
    planned: int = 0
    empty: int = 0
    groups_rendered: int = 0
    groups_reused: int = 0
    sent: int = 0
    deferred: int = 0
    held: int = 0
    failed: int = 0
    skipped: int = 0
    suppressed: int = 0
    dry_run: bool = False

    def __str__(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {self.due} due, {self.planned} digests would be sent in {self.groups_rendered} groups, "
                f"{self.empty} empty; nothing was changed"
            )
        return (
            f"{self.due} due, {self.groups_rendered} groups rendered, {self.sent} sent, {self.empty} empty, "
            f"{self.deferred} deferred, {self.failed} failed, {self.skipped} skipped, {self.suppressed} suppressed"
            + (f", {self.held} held (a fault of the newsletter or its rendering; ADMINS told)" if self.held else "")
            + (f"; {self.groups_reused} groups reused from another run" if self.groups_reused else "")
        )


def digest_run(
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    newsletter_slug: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunSummary:
    """Send every digest due at `now`; with dry_run, report what would happen and change nothing."""
    digest_settings.check_all()
    newsletter_ids = newsletters_selected(newsletter_slug)
    if newsletter_ids == []:
        raise DigestError(f"No newsletter with slug {newsletter_slug!r}.")
    say = progress or (lambda message: None)

    # A dry run plans for real inside a transaction it then rolls back: the preview is
    # exactly what a run would do, and nothing is changed.
    with transaction.atomic() if dry_run else nullcontext():
        subscriptions_schedule(now=now, newsletter_ids=newsletter_ids)
        plan = deliveries_plan(now=now, newsletter_ids=newsletter_ids, progress=say)
        if dry_run:
            transaction.set_rollback(True)
    summary = RunSummary(due=plan["due"], planned=plan["planned"], empty=plan["empty"], dry_run=dry_run)
    if dry_run:
        summary.groups_rendered = plan["groups"]
        return summary

    counts: Counter = Counter()
    counts["sent"] = deliveries_recover(now=now)
    if counts["sent"]:
        say(f"recovered {counts['sent']} messages a dead run had sent (from its journal)")
    total = deliveries_waiting(now=now, newsletter_ids=newsletter_ids).count()
    claimant = claimant_new()
    journal = Journal(digest_settings.journal_dir, claimant)
    renders: dict[Window, RenderedDigest | DigestError | None] = {}
    held_errors: set[str] = set()
    last_id = 0
    while True:
        batch = deliveries_claim(
            now=now,
            claimant=claimant,
            limit=digest_settings.BATCH_SIZE,
            newsletter_ids=newsletter_ids,
            after_id=last_id,
        )
        if not batch and last_id:
            last_id = 0  # one more pass from the start: rows skipped while locked, or freed since
            continue
        if not batch:
            break
        last_id = max(delivery.id for delivery in batch)
        for delivery in batch:
            window = Window(delivery.newsletter_id, delivery.window_start, delivery.window_end)
            if window not in renders:
                renders[window] = group_render(window, now=now)
        outcomes = batch_send(deliveries=batch, rendered=renders, journal=journal)
        held_errors.update(outcome.error for outcome in outcomes if outcome.held)
        counts += outcomes_record(outcomes=outcomes, now=now, claimant=claimant)
        done = sum(counts[key] for key in ("sent", "deferred", "failed", "skipped", "held"))
        say(
            f"delivered {done}/{max(total, done)}: {counts['sent']} sent, {counts['deferred']} deferred, {counts['failed']} failed"
        )

    # Only after every outcome is in the database; if this run dies, the journal stays.
    journal.close()
    Rendering.objects.filter(rendered_at__lt=now - datetime.timedelta(days=1)).delete()
    digests = [value for value in renders.values() if isinstance(value, RenderedDigest)]
    summary.groups_rendered = sum(1 for digest in digests if not digest.reused)
    summary.groups_reused = sum(1 for digest in digests if digest.reused)
    for key in ("sent", "deferred", "failed", "skipped", "suppressed", "held"):
        setattr(summary, key, counts[key])
    if summary.failed or summary.held:
        report_failures(summary=summary, now=now, claimant=claimant, held_errors=sorted(held_errors))
    return summary


def group_render(window: Window, *, now: datetime.datetime) -> RenderedDigest | DigestError | None:
    """Return one group's digest, rendered once for every run and process that sends it.

    None if its issues were unpublished meanwhile. The Rendering row is the lock: the
    first run inserts and renders it inside one transaction; a concurrent run's INSERT
    (PostgreSQL) or BEGIN IMMEDIATE (SQLite) waits for that commit, then reuses it.
    """
    issues = list(
        Issue.objects.filter(
            newsletter_id=window.newsletter_id,
            status=IssueStatus.PUBLISHED,
            publish_at__gt=window.start,
            publish_at__lte=window.end,
        )
        .order_by("publish_at", "id")
        .select_related("newsletter")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))
    )
    if not issues:
        return None
    newsletter = issues[0].newsletter
    signature = _signature(newsletter, issues)
    key = {"newsletter": newsletter, "window_start": window.start, "window_end": window.end}
    try:
        return _render_stored(newsletter, issues, window, key=key, signature=signature, now=now)
    except RenderError as error:
        logger.error("Cannot render the digest of %s for %s: %s", newsletter.slug, window, error)
        return error
    except DatabaseError:
        raise  # the database is gone for every group, not just this one
    except Exception as error:
        # One group's digest must never stop the run for every other group: whatever its
        # content made the template, Markdown or premailer raise, the group is held and
        # ADMINS are told, with the traceback in the log.
        logger.exception("Cannot render the digest of %s for %s", newsletter.slug, window)
        return RenderError(f"cannot render: {type(error).__name__}: {error}", newsletter=newsletter.slug)


def _render_stored(newsletter, issues, window: Window, *, key: dict, signature: str, now: datetime.datetime):
    """Render a group inside the Rendering row's lock, or reuse what another run stored."""
    with transaction.atomic():
        Rendering.objects.bulk_create([Rendering(**key, rendered_at=now)], ignore_conflicts=True)
        stored = Rendering.objects.select_for_update().get(**key)
        fresh = now - datetime.timedelta(seconds=digest_settings.CLAIM_TIMEOUT) <= stored.rendered_at <= now
        if stored.signature == signature and fresh:
            return _from_stored(stored, newsletter)
        rendered = digest_render(newsletter=newsletter, issues=issues, window_start=window.start, window_end=window.end)
        stored.signature, stored.rendered_at = signature, now
        stored.subject, stored.text, stored.html = rendered.subject, rendered.text, rendered.html
        stored.issue_ids = rendered.issue_ids
        stored.attachments = [[str(f.path), f.filename, f.mimetype] for f in rendered.attachments]
        stored.save()
        return rendered


def _signature(newsletter, issues: list[Issue]) -> str:
    """What a rendering depends on: the newsletter, each issue and its files, the site URL."""
    parts = [settings.SITE_URL, digest_settings.ATTACHMENT_MAX_BYTES]
    parts += [(field.attname, getattr(newsletter, field.attname)) for field in newsletter._meta.concrete_fields]
    for issue in issues:
        parts.append(
            (issue.pk, issue.updated_at, [(a.pk, a.file.name, a.display_name) for a in issue.attachments.all()])
        )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _from_stored(stored: Rendering, newsletter) -> RenderedDigest:
    return RenderedDigest(
        newsletter=newsletter,
        subject=stored.subject,
        text=stored.text,
        html=stored.html,
        issue_ids=list(stored.issue_ids),
        attachments=[FileToSend(Path(path), filename, mimetype) for path, filename, mimetype in stored.attachments],
        reused=True,
    )


def report_failures(*, summary: RunSummary, now: datetime.datetime, claimant: str, held_errors: list[str]) -> None:
    """Mail ADMINS once about this run's failed and held deliveries."""
    recent = (
        Delivery.objects.filter(claimed_by=claimant, status="failed")
        .values_list("subscription__subscriber__email", "last_error")
        .order_by("id")[:20]
    )
    lines = [f"Digest run at {now:%Y-%m-%d %H:%M:%S %Z}: {summary}", ""]
    if held_errors:
        lines += [
            f"{summary.held} digests are held, not sent, until this is fixed (no reader is blamed; they are",
            "retried with a growing wait, and go out once the newsletter or issue is corrected):",
        ]
        lines += [f"  {error}" for error in held_errors] + [""]
    lines += [f"{email}: {error}" for email, error in recent]
    logger.error("Digest run had %d failed and %d held deliveries", summary.failed, summary.held)
    parts = [
        f"{summary.failed} failed deliveries" if summary.failed else "",
        f"{summary.held} held" if summary.held else "",
    ]
    try:
        mail_admins(f"Digest run: {', '.join(filter(None, parts))}", "\n".join(lines))
    except (smtplib.SMTPException, OSError) as error:
        # Every outcome is already recorded; a report that cannot go out must not fail the run.
        logger.error("Cannot mail the run's report to ADMINS: %s", error)
