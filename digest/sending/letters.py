"""Letters out: claim the due ones, render each, send them through the digests' pool, record every outcome.

A letter (digest.models.Letter) is sent exactly as a digest is, with the same parts: claims
are leases on the database's clock (digest.sending.lease) renewed while a batch is sent;
every message a relay accepted is journalled at once (digest.sending.journal) under a
claimant of the letters' own (`<task>/letters`, since letters and deliveries are numbered
apart); a sender that died is taken over once its lease expired, its journal applied first,
so only the letters in flight (one per connection) go out again, with the same Message-ID.
The delivery policy is the digests' (digest.sending.outcomes): 4xx deferred with backoff
until DIGEST_MAX_ATTEMPTS, 5xx failed, a fault of the letter's text held.

The send task (digest.tasks.digest_send) sends the letters after the digests, so every
cron run (send_digests) sends them too.
"""

import datetime
from collections import Counter

from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils.crypto import salted_hmac

from digest.conf import digest_settings
from digest.exceptions import DeliveryError, RenderError
from digest.models import DeliveryStatus, Letter, installation_key
from digest.rendering.letters import letter_render
from digest.sending.journal import Journal
from digest.sending.lease import Lease, LeaseLost, stop_requested
from digest.sending.ledger import claims_recover, deliveries_release, leases_renew
from digest.sending.outcomes import Outcome, backoff, hold_wait
from digest.sending.pool import Pool
from newsletters.conf import site_domain
from project.clock import db_now


def letter_message_id(letter_id: int, *, installation: str) -> str:
    """Return a letter's Message-ID: the same on every retry, unique per installation, signed."""
    local = f"letter.{installation}.{letter_id}"
    signature = salted_hmac("digest.message-id", local, algorithm="sha256").hexdigest()[:12]
    return f"<{local}.{signature}@{site_domain()}>"


def _claimable(now: datetime.datetime) -> Q:
    return Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEFERRED], due_at__lte=now)


def letters_claim(
    *, now: datetime.datetime, claimant: str, limit: int, newsletter_ids: list[int] | None = None
) -> list[Letter]:
    """Claim up to `limit` due letters, stamped with the database's time; return them with what sending needs.

    As digest.sending.ledger.deliveries_claim: the ids are picked (SKIP LOCKED on
    PostgreSQL), then claimed by an UPDATE that repeats the condition, so no two senders
    claim the same letter. A letter claimed the first time gets its Message-ID.
    """
    candidates = Letter.objects.filter(_claimable(now)).order_by("due_at", "id")
    if newsletter_ids is not None:
        candidates = candidates.filter(subscription__newsletter_id__in=newsletter_ids)
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    with transaction.atomic():
        picked = list(candidates.values_list("id", flat=True)[:limit])
        claimed = Letter.objects.filter(_claimable(now), id__in=picked).update(
            status=DeliveryStatus.SENDING, claimed_by=claimant, claimed_at=db_now(), attempts=F("attempts") + 1
        )
    if not claimed:
        return []
    letters = list(
        Letter.objects.filter(claimed_by=claimant, status=DeliveryStatus.SENDING)
        .select_related("subscription__subscriber", "subscription__newsletter")
        .order_by("id")
    )
    new = [letter for letter in letters if not letter.message_id]
    if new:
        installation = installation_key()
        for letter in new:
            letter.message_id = letter_message_id(letter.pk, installation=installation)
        Letter.objects.bulk_update(new, ["message_id"])
    return letters


def letters_record(*, outcomes: list[Outcome], now: datetime.datetime, claimant: str) -> Counter:
    """Record a batch's outcomes, in one transaction; only the letters this claimant still holds. Returns counts."""
    counts: Counter = Counter()
    with transaction.atomic():
        mine = Letter.objects.filter(claimed_by=claimant, status=DeliveryStatus.SENDING)
        sent = [o.delivery.pk for o in outcomes if o.status == DeliveryStatus.SENT]
        if sent:
            counts["sent"] += mine.filter(id__in=sent).update(status=DeliveryStatus.SENT, sent_at=now, last_error="")
        for outcome in outcomes:
            if outcome.status == DeliveryStatus.SENT:
                continue
            letter, status, error = outcome.delivery, outcome.status, outcome.error
            fields = {}
            if outcome.held:  # the claim counted an attempt that was not the reader's
                fields = {"attempts": F("attempts") - 1, "due_at": now + hold_wait(letter, now=now)}
            elif status == DeliveryStatus.DEFERRED and letter.attempts >= digest_settings.MAX_ATTEMPTS:
                status, error = DeliveryStatus.FAILED, f"gave up after {letter.attempts} attempts: {error}"
            elif status == DeliveryStatus.DEFERRED:
                fields = {"due_at": now + backoff(letter.attempts)}
            if mine.filter(id=letter.pk).update(status=status, last_error=error, **fields):
                counts["held" if outcome.held else status] += 1
    return counts


def letters_recover(*, now: datetime.datetime) -> int:
    """Take over expired claims on letters (digest.sending.ledger.claims_recover); returns how many were recorded sent."""

    def record(claimant: str, accepted: set[int]) -> int:
        outcomes = [Outcome(letter, DeliveryStatus.SENT) for letter in Letter.objects.filter(id__in=accepted)]
        return letters_record(outcomes=outcomes, now=now, claimant=claimant)["sent"]

    return claims_recover(Letter, record=record)[0]


def letters_send(*, claimant: str, now: datetime.datetime, newsletter_ids: list[int] | None = None) -> dict:
    """Send every due letter in batches until none is left or a stop is asked for; return the counts.

    `claimant` is the send task's; the letters are claimed as `<claimant>/letters`. With
    `newsletter_ids`, only letters to readers of those newsletters.
    """
    claimant = f"{claimant}/letters"
    pool = Pool(
        aliases=digest_settings.mailer_aliases, size=digest_settings.CONNECTIONS, rate=digest_settings.RATE_LIMIT
    )
    lease = Lease(claimant=claimant, timeout=digest_settings.CLAIM_TIMEOUT)
    journal = Journal(claimant)
    counts: Counter = Counter()
    recorded = False
    try:
        while not stop_requested.is_set():
            counts["sent"] += letters_recover(now=now)
            started = lease.stamping()
            batch = letters_claim(
                now=now, claimant=claimant, limit=digest_settings.BATCH_SIZE, newsletter_ids=newsletter_ids
            )
            lease.stamped(started)
            if not batch:
                break
            _batch_send(batch, now=now, claimant=claimant, pool=pool, lease=lease, journal=journal, counts=counts)
        recorded = True
    finally:
        pool.close()
        journal.close(keep=not recorded)
    return {f"letters_{key}": counts[key] for key in ("sent", "deferred", "failed", "skipped", "held")}


def _batch_send(
    batch: list[Letter], *, now, claimant: str, pool: Pool, lease: Lease, journal: Journal, counts: Counter
) -> None:
    """Render a claimed batch (before sending: only the connections use the database then), send, record."""
    decided: list[Outcome] = []
    messages: list[tuple[Letter, EmailMessage]] = []
    for letter in batch:
        try:
            message = letter_render(letter, now=now)
        except (RenderError, ValueError) as error:  # the letter's own fault: held, nobody blamed
            decided.append(Outcome(letter, DeliveryStatus.DEFERRED, f"cannot render: {error}", held=True))
            continue
        if isinstance(message, str):
            decided.append(Outcome(letter, DeliveryStatus.SKIPPED, message))
            continue
        message.extra_headers["Message-ID"] = letter.message_id
        messages.append((letter, message))

    def renewal(db) -> int:
        return leases_renew(claimant=claimant, connection=db, model=Letter)

    outcomes: list[Outcome] = []
    if messages:
        lease.renew(lambda: renewal(connection), holding=len(batch))  # rendering may have taken long
        with lease.heartbeat(lambda: journal.through(renewal), holding=len(batch)):
            sendable = ((letter, _sender(message)) for letter, message in messages)
            outcomes = pool.send(sendable, journal=journal, expected=len(messages), lease=lease)
    settled = {outcome.delivery.pk for outcome in outcomes}
    unsettled = [letter for letter in pool.unsettled if letter.pk not in settled]
    outcomes += [
        Outcome(letter, DeliveryStatus.DEFERRED, f"sending was interrupted: {pool.interrupted}") for letter in unsettled
    ]
    written = settled | {letter.pk for letter in unsettled}
    unwritten = [letter.pk for letter, _ in messages if letter.pk not in written]
    counts.update(letters_record(outcomes=decided + outcomes, now=now, claimant=claimant))
    deliveries_release(claimant=claimant, ids=unwritten, model=Letter)
    if isinstance(pool.fault, LeaseLost):
        raise pool.fault
    if pool.fault is not None:
        raise DeliveryError(f"Sending letters stopped: {pool.interrupted}", claimant=claimant) from pool.fault


def _sender(message: EmailMessage):
    return lambda backend: backend.send_messages([message]) == 1
