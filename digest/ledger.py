"""The Delivery ledger: claim batches, record every outcome, move cursors, recover dead runs.

Claims are safe across processes and machines: on PostgreSQL the candidate rows are
locked with SKIP LOCKED; on SQLite the IMMEDIATE transaction holds the write lock; on
both the UPDATE repeats the claimable condition, so only one claimant can win a row.
A claim older than DIGEST_CLAIM_TIMEOUT belongs to a process that died and is taken over.

Outcomes are recorded per batch, in one transaction with the subscription cursor:
sent → the cursor moves to the window end; 4xx or a dropped connection → deferred with
backoff; 5xx → failed (the cursor moves on, the failure stays on the delivery, and the
subscriber is suppressed after DIGEST_SUPPRESS_AFTER in a row).

A fault of the group rather than of the reader (its digest cannot be rendered, the
newsletter's From is not an address, the relay refuses our sender) *holds* the group:
its deliveries are deferred without counting an attempt, nobody's cursor or failure
count moves, and the run tells ADMINS. They go out once the fault is fixed.
"""

import datetime
import uuid
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet

from digest.conf import digest_settings
from digest.journal import journal_read
from digest.models import Delivery, DeliveryStatus, JournalEntry
from newsletters.models import Subscriber, SubscriberStatus, Subscription
from newsletters.schedules import subscription_next_due


def claimant_new() -> str:
    """Return an identifier for a sender's claims (a send task uses its task result id)."""
    return uuid.uuid4().hex


def _claimable(now: datetime.datetime, lease: datetime.datetime | None = None) -> Q:
    expired = (lease or now) - datetime.timedelta(seconds=digest_settings.CLAIM_TIMEOUT)
    return (
        Q(status=DeliveryStatus.PENDING)
        | Q(status=DeliveryStatus.DEFERRED, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.SENDING, claimed_at__lt=expired)
    )


def deliveries_waiting(
    *, now: datetime.datetime, newsletter_ids: list[int] | None = None, lease: datetime.datetime | None = None
) -> QuerySet[Delivery]:
    """Deliveries a run at `now` may claim: pending, deferred and due, or with a claim expired at `lease`."""
    waiting = Delivery.objects.filter(_claimable(now, lease))
    if newsletter_ids is not None:
        waiting = waiting.filter(newsletter_id__in=newsletter_ids)
    return waiting


def deliveries_claim(
    *,
    now: datetime.datetime,
    claimant: str,
    limit: int,
    newsletter_ids: list[int] | None = None,
    after_id: int = 0,
    lease: datetime.datetime | None = None,
) -> list[Delivery]:
    """Claim up to `limit` deliveries with ids above `after_id` and return them with what sending needs.

    Claims are stamped `lease` (default `now`): the moment the claim's timeout counts from.

    One UPDATE whose subquery picks the rows (PostgreSQL: FOR UPDATE SKIP LOCKED) and
    repeats the claimable condition, so two runs can never claim the same row; then one
    SELECT of what was claimed. A run passes the last id it claimed, so each claim reads
    from there instead of past every row already sent (which made a claim's cost grow
    with the list), then sweeps once more from the start.
    """
    lease = lease or now
    candidates = (
        deliveries_waiting(now=now, newsletter_ids=newsletter_ids, lease=lease).filter(id__gt=after_id).order_by("id")
    )
    skip_locked = connection.features.has_select_for_update_skip_locked
    if skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    picked = candidates.values("id")[:limit]
    # Django wants FOR UPDATE inside a transaction; on SQLite the statement alone is atomic.
    with transaction.atomic() if skip_locked else nullcontext():
        claimed = Delivery.objects.filter(_claimable(now, lease), id__in=picked).update(
            status=DeliveryStatus.SENDING, claimed_by=claimant, claimed_at=lease, attempts=F("attempts") + 1
        )
    if not claimed:
        return []
    return list(
        Delivery.objects.filter(claimed_by=claimant, claimed_at=lease, status=DeliveryStatus.SENDING)
        .select_related("subscription__subscriber", "subscription__newsletter")
        .order_by("newsletter_id", "window_start", "window_end", "id")
    )


@dataclass
class Outcome:
    delivery: Delivery
    status: str
    error: str = ""
    # A 5xx for this recipient: counts towards suppressing the subscriber.
    permanent: bool = False
    # Deferred for a fault of the group (newsletter settings, rendering, our sender): not the reader's.
    held: bool = False


def backoff(attempts: int) -> datetime.timedelta:
    """Return the wait before retry number `attempts` + 1: doubling, capped."""
    seconds = digest_settings.RETRY_BACKOFF * 2 ** max(attempts - 1, 0)
    return datetime.timedelta(seconds=min(seconds, digest_settings.RETRY_MAX))


def hold_wait(delivery: Delivery, *, now: datetime.datetime) -> datetime.timedelta:
    """Return how long a held delivery waits: as long as it has waited so far, within the retry bounds."""
    waited = now - delivery.created_at
    low = datetime.timedelta(seconds=digest_settings.RETRY_BACKOFF)
    return min(max(waited, low), datetime.timedelta(seconds=digest_settings.RETRY_MAX))


def outcomes_record(*, outcomes: list[Outcome], now: datetime.datetime, claimant: str) -> Counter:
    """Record a batch's outcomes and move cursors, in one transaction. Returns counts by status.

    Only rows this run still owns are recorded: if its claim expired and another run took
    a delivery over, that run records it.
    """
    counts: Counter = Counter()
    for outcome in outcomes:
        if outcome.held:
            continue  # never given up on: it waits for the fault to be fixed
        if outcome.status == DeliveryStatus.DEFERRED and outcome.delivery.attempts >= digest_settings.MAX_ATTEMPTS:
            outcome.status = DeliveryStatus.FAILED
            outcome.error = f"gave up after {outcome.delivery.attempts} attempts: {outcome.error}"
    with transaction.atomic():
        mine = Delivery.objects.filter(claimed_by=claimant, status=DeliveryStatus.SENDING)
        sent = [o for o in outcomes if o.status == DeliveryStatus.SENT]
        if sent:
            updated = mine.filter(id__in=[o.delivery.id for o in sent]).update(
                status=DeliveryStatus.SENT, sent_at=now, last_error=""
            )
            if updated != len(sent):  # some claims were taken over: keep only what was ours
                owned = set(
                    Delivery.objects.filter(
                        id__in=[o.delivery.id for o in sent], claimed_by=claimant, sent_at=now
                    ).values_list("id", flat=True)
                )
                sent = [o for o in sent if o.delivery.id in owned]
        others = []
        for outcome in outcomes:
            if outcome.status == DeliveryStatus.SENT:
                continue
            fields = {"status": outcome.status, "last_error": outcome.error}
            if outcome.held:
                # The claim counted an attempt; a held delivery's wait grows with how long it has been held.
                fields["attempts"] = F("attempts") - 1
                fields["next_attempt_at"] = now + hold_wait(outcome.delivery, now=now)
            elif outcome.status == DeliveryStatus.DEFERRED:
                fields["next_attempt_at"] = now + backoff(outcome.delivery.attempts)
            if mine.filter(id=outcome.delivery.id).update(**fields):
                others.append(outcome)
        for outcome in [*sent, *others]:
            counts["held" if outcome.held else outcome.status] += 1
        # Every final outcome consumes the window: the cursor moves past it.
        final = [o for o in [*sent, *others] if o.status != DeliveryStatus.DEFERRED]
        _cursors_advance([o.delivery for o in final])
        _failures_count(sent=sent, permanent=[o for o in final if o.permanent], counts=counts)
    return counts


def deliveries_recover(*, now: datetime.datetime, lease: datetime.datetime | None = None) -> tuple[int, set[str]]:
    """Record as sent what dead runs' journals say the server accepted; return how many, and the dead claimants.

    Runs before claiming, so expired claims (at `lease`, default `now`) are taken over only
    for the messages whose fate is unknown.
    """
    expired = Delivery.objects.filter(
        status=DeliveryStatus.SENDING,
        claimed_at__lt=(lease or now) - datetime.timedelta(seconds=digest_settings.CLAIM_TIMEOUT),
    )
    recovered = 0
    dead = set(expired.values_list("claimed_by", flat=True))
    for claimant in dead:
        accepted = journal_read(claimant)
        if accepted:
            deliveries = expired.filter(claimed_by=claimant, id__in=accepted).select_related(
                "subscription__subscriber", "subscription__newsletter"
            )
            outcomes = [Outcome(delivery, DeliveryStatus.SENT) for delivery in deliveries]
            recovered += outcomes_record(outcomes=outcomes, now=now, claimant=claimant)[DeliveryStatus.SENT]
    # Marks prove something only while their claimant's claim is alive: drop those just
    # recovered, and those of claimants with nothing in flight (dead after recording).
    in_flight = Delivery.objects.filter(status=DeliveryStatus.SENDING).values("claimed_by")
    JournalEntry.objects.filter(Q(claimant__in=dead) | ~Q(claimant__in=in_flight)).delete()
    return recovered, dead


def _cursors_advance(deliveries: list[Delivery]) -> None:
    """Move each subscription's cursor to its window end (and its next due time), for a whole batch.

    PostgreSQL: one UPDATE … FROM (VALUES …) per batch. SQLite: one UPDATE per (end, next
    due) pair, of which a batch has few, since subscriptions of one group share both.
    A cursor already past the end (a retried old delivery) stays where it is.
    """
    by_values: dict[tuple, list[int]] = {}
    for delivery in deliveries:
        subscription = delivery.subscription
        next_due = subscription_next_due(subscription, after=delivery.window_end)
        by_values.setdefault((delivery.window_end, next_due), []).append(subscription.pk)
    if not by_values:
        return
    if connection.vendor == "postgresql":
        rows = [(pk, end, next_due) for (end, next_due), ids in by_values.items() for pk in ids]
        table = Subscription._meta.db_table
        values = ", ".join(["(%s::bigint, %s::timestamptz, %s::timestamptz)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{table}" s SET "cursor" = v.end_at, next_due_at = v.next_due '
                f"FROM (VALUES {values}) AS v(id, end_at, next_due) "
                'WHERE s.id = v.id AND (s."cursor" IS NULL OR s."cursor" < v.end_at)',
                [value for row in rows for value in row],
            )
        return
    for (end, next_due), ids in by_values.items():
        Subscription.objects.filter(Q(cursor__isnull=True) | Q(cursor__lt=end), id__in=ids).update(
            cursor=end, next_due_at=next_due
        )


def _failures_count(*, sent: list[Outcome], permanent: list[Outcome], counts: Counter) -> None:
    """Reset the failure streak of those who received mail; suppress those failing too often."""
    recovered = [
        o.delivery.subscription.subscriber_id for o in sent if o.delivery.subscription.subscriber.consecutive_failures
    ]
    if recovered:
        Subscriber.objects.filter(id__in=recovered).update(consecutive_failures=0)
    if not permanent:
        return
    ids = [o.delivery.subscription.subscriber_id for o in permanent]
    Subscriber.objects.filter(id__in=ids).update(consecutive_failures=F("consecutive_failures") + 1)
    counts["suppressed"] += Subscriber.objects.filter(
        id__in=ids, consecutive_failures__gte=digest_settings.SUPPRESS_AFTER, status=SubscriberStatus.ACTIVE
    ).update(status=SubscriberStatus.SUPPRESSED)
