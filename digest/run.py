"""One digest run: plan, then send as tasks of Django's Tasks framework (digest.tasks).

The run (cron's process) schedules due subscriptions and plans them into the ledger,
then enqueues send tasks. Each send task recovers dead senders' batches, claims batches,
renders each group once, sends and records them, and tells ADMINS about its failed or
held deliveries. With the immediate backend (the default) the task runs inline, before
the run returns; with django-tasks-db or RQ, workers on any machine run them.

Every time-dependent decision uses the run's `now` (by default the database's clock,
project.clock), so `send_digests --now` replays a moment exactly; only claims are stamped
with the database's own time as it passes: they are leases (digest.sending.lease), renewed while
their batch is sent, so a sender never looks dead merely because its task waited in a
queue or a batch took long, and no machine's clock decides when a claim expires.
"""

import dataclasses
import datetime
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

from django.db import transaction
from django.tasks import TaskResultStatus
from django.utils import timezone

from digest.breaker import breaker_summary
from digest.checks import settings_check_all
from digest.exceptions import DigestError
from digest.models import Rendering, Run
from digest.planning.due import newsletters_selected, subscriptions_schedule
from digest.planning.letters import onboarding_plan, reconfirm_pause, reconfirm_plan
from digest.planning.plan import deliveries_plan
from digest.processes import processes_resolve, senders_run
from digest.returns.policy import rates_warn
from digest.sending.batches import (
    send_progress,
)
from digest.tasks import sends_enqueue, sends_wait

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
    # Claimed but never written: a stop was asked for (SIGTERM); handed back for the next run.
    released: int = 0
    # SMTP connections opened, and how many the pool had open at once at most (the sum over send tasks).
    connections: int = 0
    connections_at_once: int = 0
    # Bounce or complaint rate past the ESP thresholds (digest.returns.policy), also mailed to ADMINS.
    warning: str = ""
    # Digests of newsletters the circuit breaker paused (digest.breaker), waiting for an owner to
    # resume them, and why each is paused.
    paused_held: int = 0
    paused: str = ""
    dry_run: bool = False
    # Send tasks enqueued for workers and not finished when the run returned (without --wait).
    tasks_pending: int = 0
    # One-off letters (digest.sending.letters): onboarding steps, re-confirmations, invitations.
    letters_sent: int = 0
    letters_deferred: int = 0
    letters_failed: int = 0
    letters_skipped: int = 0
    letters_held: int = 0

    def add(self, counts: dict) -> None:
        """Add a send task's counts."""
        for key, value in counts.items():
            setattr(self, key, getattr(self, key) + value)

    def __str__(self) -> str:
        if self.tasks_pending:
            return (
                f"{self.due} due, {self.planned} planned, {self.empty} empty; {self.tasks_pending} send tasks "
                "enqueued for the workers (send_digests --wait waits for them)"
            )
        if self.dry_run:
            return (
                f"dry run: {self.due} due, {self.planned} digests would be sent in {self.groups_rendered} groups, "
                f"{self.empty} empty; nothing was changed"
            )
        return (
            f"{self.due} due, {self.groups_rendered} groups rendered, {self.sent} sent, {self.empty} empty, "
            f"{self.deferred} deferred, {self.failed} failed, {self.skipped} skipped, {self.suppressed} suppressed"
            + (f", {self.held} held (a fault of the newsletter or its rendering; ADMINS told)" if self.held else "")
            + (f"; {self.paused_held} held: {self.paused}" if self.paused else "")
            + (f"; stopped early: {self.released} handed back to the next run" if self.released else "")
            + (f"; {self.groups_reused} groups reused from another run" if self.groups_reused else "")
            + (f"; WARNING: {self.warning}" if self.warning else "")
            + (f"; letters: {self._letters()}" if self._letters() else "")
        )

    def _letters(self) -> str:
        counts = {key: getattr(self, f"letters_{key}") for key in ("sent", "deferred", "failed", "skipped", "held")}
        return ", ".join(f"{count} {key}" for key, count in counts.items() if count)


def digest_run(
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    newsletter_slug: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    wait: bool = False,
    processes: int | str = 1,
) -> RunSummary:
    """Plan every digest due at `now` and enqueue the tasks that send them; with dry_run, change nothing.

    With the immediate task backend (the default) the send task runs here, before this
    returns; with workers, `wait` waits for their tasks and folds their counts in.
    `progress` gets a line per step; `on_batch(done, total)` is called after each batch a
    send task running here has sent. `processes` (a number, or "auto") sends with that many
    processes of this machine instead (digest.processes).
    """
    started = timezone.now()
    settings_check_all()
    newsletter_ids = newsletters_selected(newsletter_slug)
    if newsletter_ids == []:
        raise DigestError(f"No newsletter with slug {newsletter_slug!r}.")
    say = progress or (lambda message: None)
    summary = _plan(now=now, newsletter_ids=newsletter_ids, dry_run=dry_run, say=say)
    if dry_run:
        return summary
    Rendering.objects.filter(rendered_at__lt=now - datetime.timedelta(days=1)).delete()
    senders = processes_resolve(processes, say=say)
    if senders > 1:
        for counts in senders_run(
            senders, now=now, newsletter_slug=newsletter_slug, newsletter_ids=newsletter_ids, say=say, on_batch=on_batch
        ):
            summary.add(counts)
        return _finish(
            summary, started=started, now=now, newsletter_slug=newsletter_slug, newsletter_ids=newsletter_ids
        )
    token = send_progress.set((say, on_batch))
    try:
        results = sends_enqueue(now=now, newsletter_ids=newsletter_ids)
    finally:
        send_progress.reset(token)
    if wait:
        sends_wait(results, say=say)
    for result in results:
        if not result.is_finished:
            summary.tasks_pending += 1
        elif result.status == TaskResultStatus.FAILED:
            error = result.errors[-1].traceback.strip().splitlines()[-1] if result.errors else "unknown error"
            raise DigestError(f"The send task {result.id} failed: {error}")
        else:
            summary.add(result.return_value)
    return _finish(summary, started=started, now=now, newsletter_slug=newsletter_slug, newsletter_ids=newsletter_ids)


def _finish(summary: RunSummary, *, started, now, newsletter_slug, newsletter_ids) -> RunSummary:
    """Warn about bounce rates, say what the breaker holds, and record the run."""
    if summary.sent:
        summary.warning = rates_warn(now=now)
    summary.paused_held, summary.paused = breaker_summary(newsletter_ids=newsletter_ids)
    with transaction.atomic():  # what answers the Run's save (the hooks outbox) commits with it
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
        reconfirm_pause(now=now)  # before planning: a paused reader gets no digest
        subscriptions_schedule(now=now, newsletter_ids=newsletter_ids)
        plan = deliveries_plan(now=now, newsletter_ids=newsletter_ids, progress=say)
        onboarding_plan(now=now, newsletter_ids=newsletter_ids)
        reconfirm_plan(now=now, newsletter_ids=newsletter_ids)
        if dry_run:
            transaction.set_rollback(True)
    summary = RunSummary(due=plan["due"], planned=plan["planned"], empty=plan["empty"], dry_run=dry_run)
    if dry_run:
        summary.groups_rendered = plan["groups"]
    return summary
