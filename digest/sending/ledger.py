"""The Delivery ledger: claim batches, record every outcome, move cursors, recover dead runs.

Claims are safe across processes and machines: on PostgreSQL the candidate rows are
locked with SKIP LOCKED; on SQLite the IMMEDIATE transaction holds the write lock; on
both the UPDATE repeats the claimable condition, so only one claimant can win a row.

Claims are leases (digest.sending.lease) stamped on the database's clock (project.clock) and
renewed while their batch is sent. A claim whose stamp is older than DIGEST_CLAIM_TIMEOUT
belongs to a sender that died or froze: `deliveries_recover` takes it over, in one
transaction that first records what its claimant's journal proves sent and only then
hands the rest back to be claimed. Claiming itself never takes a `sending` row.

Outcomes are recorded per batch, in one transaction with the subscription cursor:
sent → the cursor moves to the window end; 4xx or a dropped connection → deferred with
backoff; 5xx → failed (the cursor moves on, the failure stays on the delivery, and the
subscriber is suppressed after DIGEST_SUPPRESS_AFTER in a row).

A fault of the group rather than of the reader (its digest cannot be rendered, the
newsletter's From is not an address, the relay refuses our sender) *holds* the group:
its deliveries are deferred without counting an attempt, nobody's cursor or failure
count moves, and the run tells ADMINS. They go out once the fault is fixed. A newsletter
its circuit breaker paused (digest.breaker) is not claimed at all: its deliveries wait as
they are until an owner resumes it.
"""

import datetime
from collections import Counter, defaultdict
from collections.abc import Callable

from django.db import connection, models, transaction
from django.db.models import F, Q, QuerySet

from digest.conf import digest_settings
from digest.models import Delivery, DeliveryStatus, JournalEntry, Letter
from digest.sending.journal import journal_read
from digest.sending.outcomes import Outcome, backoff, hold_wait
from newsletters.models import Newsletter, Subscriber, SubscriberStatus, Subscription
from newsletters.schedules import subscription_next_due
from project.clock import db_now


def _claimable(now: datetime.datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING) | Q(status=DeliveryStatus.DEFERRED, next_attempt_at__lte=now)


def deliveries_waiting(*, now: datetime.datetime, newsletter_ids: list[int] | None = None) -> QuerySet[Delivery]:
    """Deliveries a run at `now` may claim: pending, or deferred and due, of a newsletter not paused (digest.breaker)."""
    # A subquery, not a join: FOR UPDATE SKIP LOCKED on a join would lock the newsletter's row
    # too, and a second claimant would skip every delivery of that newsletter.
    paused = Newsletter.objects.filter(paused_at__isnull=False).values("id")
    waiting = Delivery.objects.filter(_claimable(now)).exclude(newsletter_id__in=paused)
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
    stamp: datetime.datetime,
) -> list[Delivery]:
    """Claim up to `limit` deliveries with ids above `after_id` and return them with what sending needs.

    Claims are stamped `stamp`, the database's time (project.clock.db_now): their lease counts from it.

    In one transaction, a SELECT picks the rows (PostgreSQL: FOR UPDATE SKIP LOCKED) and an
    UPDATE claims them, repeating the claimable condition, so two runs can never claim the
    same row; then one SELECT of what was claimed. A run passes the last id it claimed, so each claim reads
    from there instead of past every row already sent (which made a claim's cost grow
    with the list), then sweeps once more from the start.
    """
    candidates = deliveries_waiting(now=now, newsletter_ids=newsletter_ids).filter(id__gt=after_id).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    # The ids are read first, then updated: as one UPDATE … WHERE id IN (SELECT … LIMIT n FOR
    # UPDATE SKIP LOCKED), PostgreSQL may run the subquery again for each row and claim far
    # more than n. On SQLite the transaction holds the write lock from its start (IMMEDIATE).
    with transaction.atomic():
        picked = list(candidates.values_list("id", flat=True)[:limit])
        claimed = Delivery.objects.filter(_claimable(now), id__in=picked).update(
            status=DeliveryStatus.SENDING, claimed_by=claimant, claimed_at=stamp, attempts=F("attempts") + 1
        )
    if not claimed:
        return []
    # A claimant holds one batch at a time: its `sending` rows are this batch.
    return list(
        Delivery.objects.filter(claimed_by=claimant, status=DeliveryStatus.SENDING)
        .select_related("subscription__subscriber", "subscription__newsletter")
        .order_by("newsletter_id", "window_start", "window_end", "id")
    )


def outcomes_record(*, outcomes: list[Outcome], now: datetime.datetime, claimant: str) -> Counter:
    """Record a batch's outcomes and move cursors, in one transaction. Returns counts by status.

    Only rows this run still owns are recorded: if its claim expired and another run took
    a delivery over, that run records it.
    """
    counts: Counter = Counter()
    for outcome in outcomes:
        if outcome.held:
            continue  # never given up on: it waits for the fault to be fixed
        if (
            outcome.status == DeliveryStatus.DEFERRED
            and not outcome.unwritten
            and outcome.delivery.attempts >= digest_settings.MAX_ATTEMPTS
        ):
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
            if outcome.held or outcome.unwritten:
                # The claim counted an attempt that was not one; the wait grows with how long it has waited.
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


def deliveries_recover(*, now: datetime.datetime) -> tuple[int, set[str]]:
    """Take over expired claims on digests (claims_recover); record as sent what the journals prove.

    Returns how many deliveries this call recorded as sent, and the claimants whose claims it took over.
    """

    def record(claimant: str, accepted: set[int]) -> int:
        deliveries = Delivery.objects.filter(id__in=accepted).select_related(
            "subscription__subscriber", "subscription__newsletter"
        )
        outcomes = [Outcome(delivery, DeliveryStatus.SENT) for delivery in deliveries]
        return outcomes_record(outcomes=outcomes, now=now, claimant=claimant)[DeliveryStatus.SENT]

    return claims_recover(Delivery, record=record)


def claims_recover(model: type[models.Model], *, record: Callable[[str, set[int]], int]) -> tuple[int, set[str]]:
    """Take over expired claims of a ledger (Delivery, or digest.sending.letters' Letter).

    What a claimant's journal proves accepted is recorded as sent by `record(claimant, ids)`,
    which returns how many it recorded; the rest is handed back. Returns the count recorded and
    the claimants taken over. Expiry is judged on the database's clock. The expired rows are
    locked (SKIP LOCKED) for the whole take-over, so two senders recovering at once never both
    record (or count) the same row, and no row is handed back before its claimant's journal was
    read. Only the messages whose fate is unknown are sent again, with the same Message-ID: at
    most the one each of the dead sender's connections had in flight.
    """
    expired = model.objects.filter(
        status=DeliveryStatus.SENDING,
        claimed_at__lt=db_now() - datetime.timedelta(seconds=digest_settings.CLAIM_TIMEOUT),
    )
    if not expired.exists():
        return 0, set()
    recovered = 0
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            expired = expired.select_for_update(skip_locked=True)
        held: dict[str, set[int]] = defaultdict(set)
        for row_id, claimant in expired.values_list("id", "claimed_by"):
            held[claimant].add(row_id)
        for claimant, ids in held.items():
            accepted = journal_read(claimant) & ids
            if accepted:
                recovered += record(claimant, accepted)
            deliveries_release(claimant=claimant, ids=ids - accepted, attempted=True, model=model)
            # Only the marks of the rows taken over: rows of the same claimant that another
            # sender holds locked (SKIP LOCKED passed them) still need theirs.
            JournalEntry.objects.filter(claimant=claimant, delivery_id__in=ids).delete()
    journal_prune()
    return recovered, set(held)


def journal_prune() -> None:
    """Drop the journal marks of claimants with nothing in flight in either ledger (dead after recording).

    Marks prove something only while their claimant's claim is alive. Letters' senders
    (digest.sending.letters) journal under claimants of their own, so a digest sender's
    recovery must not take their live marks for a dead sender's.
    """
    in_flight = Delivery.objects.filter(status=DeliveryStatus.SENDING).values("claimed_by")
    letters = Letter.objects.filter(status=DeliveryStatus.SENDING).values("claimed_by")
    JournalEntry.objects.filter(~Q(claimant__in=in_flight) & ~Q(claimant__in=letters)).delete()


def deliveries_release(*, claimant: str, ids, attempted: bool = False, model=Delivery) -> int:
    """Hand claimed deliveries back to be claimed again; return how many were still this claimant's.

    A delivery whose message was never written (a stop, an interrupted send) does not count
    the attempt its claim counted; `attempted` ones (their fate unknown) keep it. `model`
    is the ledger: Delivery, or Letter (digest.sending.letters).
    """
    fields = {"status": DeliveryStatus.PENDING, "claimed_by": "", "claimed_at": None}
    if not attempted:
        fields["attempts"] = F("attempts") - 1
    return model.objects.filter(id__in=list(ids), claimed_by=claimant, status=DeliveryStatus.SENDING).update(**fields)


def leases_renew(*, claimant: str, connection, model=Delivery) -> int:
    """Stamp a claimant's claims with the database's time again, through `connection`; return how many it holds.

    Raw SQL on the given connection: the heartbeat's thread writes through the sender's
    own connection (digest.sending.journal), which is the only one that sees its claims in a test.
    `model` is the ledger: Delivery, or Letter.
    """
    table, sending = model._meta.db_table, DeliveryStatus.SENDING.value
    stamp = connection.ops.adapt_datetimefield_value(db_now(connection=connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table}" SET claimed_at = %s WHERE claimed_by = %s AND status = %s', [stamp, claimant, sending]
        )
        return cursor.rowcount


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
