"""One digest run in three steps: plan, send all, finish.

Plan schedules due subscriptions and aggregates them into the ledger; send all claims
batches, renders each group once and sends and records them; finish fills in the
summary and tells ADMINS about failed or held deliveries.

Every time-dependent decision uses the run's `now`, so `send_digests --now` replays a
moment exactly.
"""

import dataclasses
import datetime
import logging
import smtplib
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone

from digest.aggregation import deliveries_plan
from digest.bounces import rates_warn
from digest.conf import digest_settings
from digest.delivery import batch_send
from digest.exceptions import DigestError, RenderError
from digest.journal import Journal
from digest.ledger import claimant_new, deliveries_claim, deliveries_recover, deliveries_waiting, outcomes_record
from digest.models import Delivery, DeliveryStatus, Rendering, Run, Window
from digest.pool import Pool
from digest.rendering import RenderedDigest, group_render
from digest.scheduling import newsletters_selected, subscriptions_schedule

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
    # SMTP connections opened, and how many the pool had open at once at most.
    connections: int = 0
    connections_at_once: int = 0
    # Bounce or complaint rate past the ESP thresholds (digest.bounces), also mailed to ADMINS.
    warning: str = ""
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
            + (f"; WARNING: {self.warning}" if self.warning else "")
        )


def digest_run(
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    newsletter_slug: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Send every digest due at `now`; with dry_run, report what would happen and change nothing.

    `progress` gets a line per step; `on_batch(done, total)` is called after each batch sent.
    """
    started = timezone.now()
    digest_settings.check_all()
    newsletter_ids = newsletters_selected(newsletter_slug)
    if newsletter_ids == []:
        raise DigestError(f"No newsletter with slug {newsletter_slug!r}.")
    say = progress or (lambda message: None)
    summary = _plan(now=now, newsletter_ids=newsletter_ids, dry_run=dry_run, say=say)
    if dry_run:
        return summary
    sending = _send_all(now=now, newsletter_ids=newsletter_ids, say=say, on_batch=on_batch)
    _finish(sending, summary=summary, now=now)
    Run.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        now=now,
        newsletter=newsletter_slug or "",
        summary=dataclasses.asdict(summary),
    )
    return summary


def _plan(*, now: datetime.datetime, newsletter_ids: list[int] | None, dry_run: bool, say) -> RunSummary:
    """Schedule and plan every due subscription into the ledger.

    A dry run plans for real inside a transaction it then rolls back: the preview is
    exactly what a run would do, and nothing is changed.
    """
    with transaction.atomic() if dry_run else nullcontext():
        subscriptions_schedule(now=now, newsletter_ids=newsletter_ids)
        plan = deliveries_plan(now=now, newsletter_ids=newsletter_ids, progress=say)
        if dry_run:
            transaction.set_rollback(True)
    summary = RunSummary(due=plan["due"], planned=plan["planned"], empty=plan["empty"], dry_run=dry_run)
    if dry_run:
        summary.groups_rendered = plan["groups"]
    return summary


@dataclass
class _Sending:
    """What sending every batch left for the summary and the report."""

    claimant: str
    journal: Journal
    pool: Pool
    counts: Counter = field(default_factory=Counter)
    renders: dict[Window, RenderedDigest | RenderError | None] = field(default_factory=dict)
    # Each group's sender check and fast-path message, made once per run (digest.delivery).
    prepared: dict = field(default_factory=dict)
    held_errors: set[str] = field(default_factory=set)


def _send_all(*, now: datetime.datetime, newsletter_ids: list[int] | None, say, on_batch=None) -> _Sending:
    """Open the relay pool, send every batch over it, close it."""
    claimant = claimant_new()
    pool = Pool(
        aliases=digest_settings.mailer_aliases, size=digest_settings.CONNECTIONS, rate=digest_settings.RATE_LIMIT
    )
    sending = _Sending(claimant=claimant, journal=Journal(claimant), pool=pool)
    try:
        _send_batches(sending, now=now, newsletter_ids=newsletter_ids, say=say, on_batch=on_batch)
    finally:
        pool.close()
    return sending


def _send_batches(
    sending: _Sending, *, now: datetime.datetime, newsletter_ids: list[int] | None, say, on_batch=None
) -> None:
    """Recover dead runs' sends, then claim, render and send batches until none is left."""
    claimant = sending.claimant
    counts = sending.counts
    counts["sent"] = deliveries_recover(now=now)
    if counts["sent"]:
        say(f"recovered {counts['sent']} messages a dead run had sent (from its journal)")
    total = deliveries_waiting(now=now, newsletter_ids=newsletter_ids).count()
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
            return
        last_id = max(delivery.id for delivery in batch)
        for window in {delivery.window for delivery in batch} - sending.renders.keys():
            try:
                sending.renders[window] = group_render(window, now=now)
            except RenderError as error:
                sending.renders[window] = error
        outcomes = batch_send(
            deliveries=batch,
            rendered=sending.renders,
            prepared=sending.prepared,
            journal=sending.journal,
            pool=sending.pool,
        )
        sending.held_errors.update(outcome.error for outcome in outcomes if outcome.held)
        counts += outcomes_record(outcomes=outcomes, now=now, claimant=claimant)
        done = sum(counts[key] for key in ("sent", "deferred", "failed", "skipped", "held"))
        say(
            f"delivered {done}/{max(total, done)}: {counts['sent']} sent, {counts['deferred']} deferred, {counts['failed']} failed"
        )
        if on_batch:
            on_batch(done, max(total, done))


def _finish(sending: _Sending, *, summary: RunSummary, now: datetime.datetime) -> None:
    """Close the journal, prune old renderings, fill in the summary and report failures."""
    # Only after every outcome is in the database; if this run dies, the journal stays.
    sending.journal.close()
    Rendering.objects.filter(rendered_at__lt=now - datetime.timedelta(days=1)).delete()
    digests = [value for value in sending.renders.values() if isinstance(value, RenderedDigest)]
    summary.groups_rendered = sum(1 for digest in digests if not digest.reused)
    summary.groups_reused = sum(1 for digest in digests if digest.reused)
    for key in ("sent", "deferred", "failed", "skipped", "suppressed", "held"):
        setattr(summary, key, sending.counts[key])
    summary.connections = sending.pool.stats.opened
    summary.connections_at_once = sending.pool.stats.most_at_once
    if summary.sent:
        summary.warning = rates_warn(now=now)
    if summary.failed or summary.held:
        report_failures(summary=summary, now=now, claimant=sending.claimant, held_errors=sorted(sending.held_errors))


def report_failures(*, summary: RunSummary, now: datetime.datetime, claimant: str, held_errors: list[str]) -> None:
    """Mail ADMINS once about this run's failed and held deliveries."""
    recent = (
        Delivery.objects.filter(claimed_by=claimant, status=DeliveryStatus.FAILED)
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
