"""A send task's work: take over expired claims, then claim, render, send and record batches until none is left.

Claims are leases on the database's clock (digest.sending.lease), renewed while a batch is
sent, so a sender never looks dead merely because its task waited in a queue or a batch
took long. A fault on any connection stops the send; what was written is recorded (with
one reconnect to the database), the rest handed back or deferred (digest.sending.pool)."""

import datetime
import gc
import logging
import smtplib
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.core.mail import mail_admins
from django.db import InterfaceError, OperationalError, connection

from digest.breaker import breaker_check
from digest.conf import digest_settings
from digest.exceptions import DeliveryError
from digest.models import Delivery, DeliveryStatus, Window
from digest.sending.delivery import Group, batch_send, groups_prepare
from digest.sending.journal import Journal
from digest.sending.lease import MARGIN, Lease, LeaseLost, stop_requested
from digest.sending.ledger import (
    deliveries_claim,
    deliveries_recover,
    deliveries_release,
    deliveries_waiting,
    leases_renew,
    outcomes_record,
)
from digest.sending.outcomes import Outcome
from digest.sending.pacing import Pacing
from digest.sending.pool import Pool
from project.clock import db_now

logger = logging.getLogger(__name__)


# Where the command asked progress to go (its lines, and each batch done), for a send task
# run inline (the immediate backend); a worker's task logs instead.
send_progress: ContextVar[tuple[Callable[[str], None], Callable[[int, int], None] | None] | None] = ContextVar(
    "digest_send_progress", default=None
)


@dataclass
class _Sending:
    """What sending every batch left for the summary and the report."""

    claimant: str
    journal: Journal
    pool: Pool
    lease: Lease
    now: datetime.datetime
    counts: Counter = field(default_factory=Counter)
    # Each group's digest, rendered (or reused) once a run, and what its messages share.
    groups: dict[Window, Group] = field(default_factory=dict)
    held_errors: set[str] = field(default_factory=set)
    dead: set[str] = field(default_factory=set)
    pacing: Pacing | None = None  # per mailbox provider, across the task's batches


def deliveries_send(
    *, claimant: str, now: datetime.datetime, newsletter_ids: list[int] | None
) -> tuple[dict, set[str]]:
    """Take over expired claims, then claim, render and send batches until none is left or a stop is asked for.

    Returns the counts, and the claimants whose expired claims were taken over. `now` is
    the run's moment (retries and cursors follow it); claims are leases on the database's
    clock, renewed while sending (digest.sending.lease).
    """
    say, on_batch = send_progress.get() or (logger.info, None)
    pool = Pool(
        aliases=digest_settings.mailer_aliases, size=digest_settings.CONNECTIONS, rate=digest_settings.RATE_LIMIT
    )
    lease = Lease(claimant=claimant, timeout=digest_settings.CLAIM_TIMEOUT)
    sending = _Sending(claimant=claimant, journal=Journal(claimant), pool=pool, lease=lease, now=now)
    if digest_settings.PACING:
        sending.pacing = Pacing(connections=digest_settings.CONNECTIONS)
    recorded = False
    # The objects alive now (Django, the settings, the URLconf: hundreds of thousands) stay for
    # the whole send; frozen, the collector stops walking them each time the send's per-message
    # garbage triggers it (several percent of its CPU). unfreeze() hands them back afterwards.
    gc.collect()
    gc.freeze()
    try:
        _send_batches(sending, now=now, newsletter_ids=newsletter_ids, say=say, on_batch=on_batch)
        recorded = True
    finally:
        gc.unfreeze()
        pool.close()
        # Marks are deleted only once every outcome is in the ledger; otherwise they are
        # what a later sender recovers this one's accepted messages from.
        sending.journal.close(keep=not recorded)
    digests = [group.digest for group in sending.groups.values() if group.digest is not None]
    counts = {
        key: sending.counts[key] for key in ("sent", "deferred", "failed", "skipped", "suppressed", "held", "released")
    }
    counts |= {
        "groups_rendered": sum(1 for digest in digests if not digest.reused),
        "groups_reused": sum(1 for digest in digests if digest.reused),
        "connections": pool.stats.opened,
        "connections_at_once": pool.stats.most_at_once,
    }
    if counts["failed"] or counts["held"]:
        report_failures(counts=counts, now=now, claimant=claimant, held_errors=sorted(sending.held_errors))
    return counts, sending.dead


def _send_batches(
    sending: _Sending,
    *,
    now: datetime.datetime,
    newsletter_ids: list[int] | None,
    say,
    on_batch=None,
) -> None:
    """Claim, render and send batches until none is left or a stop is asked for; take over expired claims first."""
    claimant, counts, lease = sending.claimant, sending.counts, sending.lease
    total = deliveries_waiting(now=now, newsletter_ids=newsletter_ids).count()
    last_id = 0
    while not stop_requested.is_set():
        # Before every claim: a sender that died or froze meanwhile is taken over within one lease.
        recovered, dead = deliveries_recover(now=now)
        sending.dead |= dead
        if recovered:
            counts["sent"] += recovered
            say(f"recovered {recovered} messages an expired sender had sent (from its journal)")
        started = lease.stamping()
        batch = deliveries_claim(
            now=now,
            claimant=claimant,
            limit=digest_settings.BATCH_SIZE,
            newsletter_ids=newsletter_ids,
            after_id=last_id,
            stamp=db_now(),
        )
        lease.stamped(started)
        if not batch and last_id:
            last_id = 0  # one more pass from the start: rows skipped while locked, or freed since
            continue
        if not batch:
            if _others_settled(sending, lease=lease, say=say):
                return
            continue  # a sender died: its claims were just taken over, some handed back
        last_id = max(delivery.id for delivery in batch)
        for window in {delivery.window for delivery in batch} - sending.groups.keys():
            sending.groups[window] = Group.rendered(window, now=now)
        groups_prepare(deliveries=batch, groups=sending.groups, pool=sending.pool)
        lease.renew(lambda: _renewal(claimant)(connection), holding=len(batch))  # rendering may have taken long
        with lease.heartbeat(lambda: sending.journal.through(_renewal(claimant)), holding=len(batch)):
            outcomes = batch_send(
                deliveries=batch,
                groups=sending.groups,
                journal=sending.journal,
                pool=sending.pool,
                lease=lease,
                pacing=sending.pacing,
            )
        _batch_settle(sending, batch=batch, outcomes=outcomes, now=now)
        # A newsletter paused here is claimed no more, by this sender or any other.
        for paused in breaker_check(newsletter_ids={delivery.newsletter_id for delivery in batch}, now=db_now()):
            say(paused)
        done = sum(counts[key] for key in ("sent", "deferred", "failed", "skipped", "held"))
        say(
            f"delivered {done}/{max(total, done)}: {counts['sent']} sent, {counts['deferred']} deferred, {counts['failed']} failed"
        )
        if on_batch:
            on_batch(done, max(total, done))


def _others_settled(sending: _Sending, *, lease: Lease, say) -> bool:
    """With nothing left to claim, watch the other senders' claims until they are settled or one of them dies.

    True when no other sender holds a claim, or their claims stayed alive (renewed) for a
    whole lease: they are working. False as soon as expired claims were taken over (their
    messages are sent again by the loop). So while any sender still runs, a dead one's
    batch is taken over within one lease, not at the next cron run.
    """
    deadline = time.monotonic() + lease.timeout * (1 + MARGIN)
    while not stop_requested.is_set():
        if not Delivery.objects.filter(status=DeliveryStatus.SENDING).exclude(claimed_by=sending.claimant).exists():
            return True
        if time.monotonic() >= deadline:
            return True
        time.sleep(lease.timeout / 8)  # another process's claims: nothing to wait on but the database
        recovered, dead = deliveries_recover(now=sending.now)
        if dead:
            sending.dead |= dead
            sending.counts["sent"] += recovered
            say(f"took over the claims of a sender that stopped renewing them; {recovered} were sent (its journal)")
            return False
    return True


def _renewal(claimant: str):
    return lambda db: leases_renew(claimant=claimant, connection=db)


def _batch_settle(sending: _Sending, *, batch: list[Delivery], outcomes: list[Outcome], now: datetime.datetime) -> None:
    """Record a batch's outcomes; hand back what was never written; raise if the send was interrupted by a fault.

    A message the pool could not settle (its connection failed mid-transaction) may have
    been accepted: it is deferred, and sent again later with the same Message-ID. Recording
    reconnects once to the database if the connection was lost (a terminated backend, a
    restarted server), so a sender that lost its database connection still leaves a ledger
    that says what it did; if that fails too, its journal does (digest.sending.ledger.deliveries_recover).
    """
    pool, counts = sending.pool, sending.counts
    sending.held_errors.update(outcome.error for outcome in outcomes if outcome.held)
    settled = {outcome.delivery.id for outcome in outcomes}
    unsettled = {delivery.id: delivery for delivery in pool.unsettled if delivery.id not in settled}
    outcomes = outcomes + [
        Outcome(delivery, DeliveryStatus.DEFERRED, f"sending was interrupted: {pool.interrupted}")
        for delivery in unsettled.values()
    ]
    unwritten = [delivery.id for delivery in batch if delivery.id not in settled and delivery.id not in unsettled]

    def record() -> None:
        counts.update(outcomes_record(outcomes=outcomes, now=now, claimant=sending.claimant))
        counts["released"] += deliveries_release(claimant=sending.claimant, ids=unwritten)

    try:
        record()
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        logger.warning("Lost the database connection while recording a batch; reconnecting once")
        connection.close()
        record()
    if isinstance(pool.fault, LeaseLost):
        raise pool.fault
    if pool.fault is not None:
        raise DeliveryError(f"Sending stopped: {pool.interrupted}", claimant=sending.claimant) from pool.fault


def report_failures(*, counts: dict, now: datetime.datetime, claimant: str, held_errors: list[str]) -> None:
    """Mail ADMINS once about a send task's failed and held deliveries."""
    failed, held = counts["failed"], counts["held"]
    recent = (
        Delivery.objects.filter(claimed_by=claimant, status=DeliveryStatus.FAILED)
        .values_list("subscription__subscriber__email", "last_error")
        .order_by("id")[:20]
    )
    tally = ", ".join(f"{counts[key]} {key}" for key in ("sent", "deferred", "failed", "skipped", "held"))
    lines = [f"Digest sending for the run at {now:%Y-%m-%d %H:%M:%S %Z} (sender {claimant}): {tally}", ""]
    if held_errors:
        lines += [
            f"{held} digests are held, not sent, until this is fixed (no reader is blamed; they are",
            "retried with a growing wait, and go out once the newsletter or issue is corrected):",
        ]
        lines += [f"  {error}" for error in held_errors] + [""]
    lines += [f"{email}: {error}" for email, error in recent]
    logger.error("Digest sending had %d failed and %d held deliveries", failed, held)
    parts = [f"{failed} failed deliveries" if failed else "", f"{held} held" if held else ""]
    try:
        mail_admins(f"Digest run: {', '.join(filter(None, parts))}", "\n".join(lines))
    except (smtplib.SMTPException, OSError) as error:
        # Every outcome is already recorded; a report that cannot go out must not fail the run.
        logger.error("Cannot mail the run's report to ADMINS: %s", error)
