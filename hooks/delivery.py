"""Delivering an endpoint's events: in order, signed, retried with backoff, never marked before a 2xx.

One worker at a time delivers an endpoint's events: it claims the endpoint with a lease
(HOOKS_LEASE_SECONDS, renewed every quarter of it; a worker killed mid-way simply stops
renewing, and once the lease has passed the next one takes over; an admin's pause stops it
at its next renewal). It sends the pending
events oldest first and marks each delivered only after the endpoint answered 2xx, so a
worker killed between the answer and the mark sends that one event again: at least once,
under the same webhook-id, which receivers dedupe by. Anything else (another status, a
redirect, a timeout, a refused address) is a failure: the endpoint stops, every event stays
where it is in the queue, and it is tried again after HOOKS_RETRY_BACKOFF seconds, doubling
with each failure in a row up to HOOKS_RETRY_MAX. Stopping the whole queue keeps each
reader's events in order, and does not hammer a receiver that is down. An endpoint failing
for HOOKS_PAUSE_AFTER_HOURS in a row is paused and ADMINS and its owner are told; its events
wait until an admin resumes it.

Time is what the caller passes as `now`, advanced by the time spent since (so tests drive
it, and a long delivery still renews its lease). The task, the cron job and the command pass
the database's clock (project.clock), so workers on machines whose clocks disagree still
agree on when a lease has run out.
"""

import datetime
import logging
import smtplib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.core.mail import EmailMessage, mail_admins
from django.db import transaction
from django.db.models import F, Q

from hooks.conf import hooks_settings
from hooks.exceptions import HooksError
from hooks.http import Answer, endpoint_post
from hooks.models import Attempt, Endpoint, Event, EventStatus
from hooks.signing import headers_signed

logger = logging.getLogger(__name__)

BATCH = 200
RESPONSE_KEPT = 1000

Post = Callable[..., Answer]


@dataclass
class Counts:
    delivered: int = 0
    failed: int = 0
    paused: int = 0  # endpoints this delivery paused

    def __str__(self) -> str:
        return f"{self.delivered} delivered, {self.failed} failed, {self.paused} endpoints paused"


def endpoints_due(*, now: datetime.datetime) -> list[int]:
    """Return the endpoints with pending events that may be delivered at `now`: not paused, backing off or claimed."""
    return list(
        Endpoint.objects.filter(paused_at__isnull=True, outbox__status=EventStatus.PENDING)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .values_list("id", flat=True)
        .distinct()
        .order_by("id")
    )


def endpoints_deliver(*, now: datetime.datetime, post: Post = endpoint_post) -> Counts:
    """Deliver every endpoint's due events here, one endpoint after another; return the counts summed."""
    total = Counts()
    for endpoint_id in endpoints_due(now=now):
        counts = endpoint_deliver(endpoint_id=endpoint_id, now=now, post=post)
        total.delivered += counts.delivered
        total.failed += counts.failed
        total.paused += counts.paused
    return total


def endpoint_deliver(*, endpoint_id: int, now: datetime.datetime, post: Post = endpoint_post) -> Counts:
    """Deliver an endpoint's pending events in order until none is left or one fails; return the counts.

    Does nothing when the endpoint is paused, backing off, or claimed by a live worker.
    `post` sends one request (hooks.http.endpoint_post); tests wrap it to kill a worker mid-way.
    """
    started = time.monotonic()

    def clock() -> datetime.datetime:
        return now + datetime.timedelta(seconds=time.monotonic() - started)

    claimant = uuid.uuid4().hex
    counts = Counts()
    if not _claim(endpoint_id, claimant=claimant, now=now):
        return counts
    renewed = now
    try:
        while True:
            endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
            if endpoint is None:
                return counts  # deleted meanwhile, with its events
            batch = list(endpoint.outbox.filter(status=EventStatus.PENDING).order_by("id")[:BATCH])
            if not batch:
                return counts
            for event in batch:
                moment = clock()
                if moment - renewed >= datetime.timedelta(seconds=hooks_settings.LEASE_SECONDS / 4):
                    if not _renew(endpoint_id, claimant=claimant, now=moment):
                        return counts  # paused by an admin, or the lease was lost: someone else goes on
                    renewed = moment
                answer, error = _send(endpoint, event, now=moment, post=post)
                finished = clock()
                _record(event, answer=answer, error=error, at=moment, milliseconds=_ms(moment, finished))
                if answer is not None and answer.ok:
                    counts.delivered += 1
                    if endpoint.failures:
                        Endpoint.objects.filter(pk=endpoint_id).update(failures=0, failing_since=None, retry_at=None)
                        endpoint.failures = 0
                    continue
                counts.failed += 1
                counts.paused = int(_failed(endpoint, reason=error or f"HTTP {answer.status}", now=finished))
                return counts
    finally:
        Endpoint.objects.filter(pk=endpoint_id, claimed_by=claimant).update(claimed_by="", claimed_until=None)


def _claim(endpoint_id: int, *, claimant: str, now: datetime.datetime) -> bool:
    return bool(
        Endpoint.objects.filter(pk=endpoint_id, paused_at__isnull=True)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(claimed_by=claimant, claimed_until=now + datetime.timedelta(seconds=hooks_settings.LEASE_SECONDS))
    )


def _renew(endpoint_id: int, *, claimant: str, now: datetime.datetime) -> bool:
    return bool(
        Endpoint.objects.filter(pk=endpoint_id, claimed_by=claimant, paused_at__isnull=True).update(
            claimed_until=now + datetime.timedelta(seconds=hooks_settings.LEASE_SECONDS)
        )
    )


def _send(endpoint: Endpoint, event: Event, *, now: datetime.datetime, post: Post) -> tuple[Answer | None, str]:
    body = event.body.encode("utf-8")
    headers = headers_signed(
        secret=endpoint.secret, webhook_id=event.webhook_id, timestamp=int(now.timestamp()), body=body
    )
    try:
        return post(endpoint.url, body=body, headers=headers), ""
    except HooksError as error:  # EndpointRefused, PostFailed: recorded, retried like a 5xx
        return None, str(error)[:500]


def _record(event: Event, *, answer: Answer | None, error: str, at: datetime.datetime, milliseconds: int) -> None:
    """Log the attempt; mark the event delivered after a 2xx, in the same transaction."""
    with transaction.atomic():
        Attempt.objects.create(
            event=event,
            at=at,
            status_code=answer.status if answer else None,
            error=error,
            response=answer.body[:RESPONSE_KEPT].decode("utf-8", "replace").replace("\x00", "") if answer else "",
            milliseconds=milliseconds,
        )
        changes = {"attempts": F("attempts") + 1}
        if answer is not None and answer.ok:
            changes |= {"status": EventStatus.DELIVERED, "delivered_at": at}
        Event.objects.filter(pk=event.pk).update(**changes)


def _ms(start: datetime.datetime, end: datetime.datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def retry_delay(failures: int) -> datetime.timedelta:
    """How long an endpoint waits after this many failures in a row."""
    seconds = hooks_settings.RETRY_BACKOFF * 2 ** min(failures - 1, 30)
    return datetime.timedelta(seconds=min(seconds, hooks_settings.RETRY_MAX))


def _failed(endpoint: Endpoint, *, reason: str, now: datetime.datetime) -> bool:
    """Count a failure, schedule the retry; pause the endpoint once it has failed long enough. True if paused."""
    failures = endpoint.failures + 1
    since = endpoint.failing_since or now
    Endpoint.objects.filter(pk=endpoint.pk).update(
        failures=failures, failing_since=since, retry_at=now + retry_delay(failures)
    )
    if now - since < datetime.timedelta(hours=hooks_settings.PAUSE_AFTER_HOURS):
        return False
    hours = (now - since).total_seconds() / 3600
    return endpoint_pause(
        endpoint, reason=f"failing for {hours:.1f} hours, {failures} attempts in a row; last: {reason}", now=now
    )


def endpoint_pause(endpoint: Endpoint, *, reason: str, now: datetime.datetime, notify: bool = True) -> bool:
    """Pause an endpoint unless it is paused already, and (with `notify`) tell ADMINS and its owner; False if it was."""
    paused = Endpoint.objects.filter(pk=endpoint.pk, paused_at__isnull=True).update(
        paused_at=now, pause_reason=reason[:300]
    )
    if not paused or not notify:
        return bool(paused)
    logger.error("Webhook endpoint %s paused: %s", endpoint.url, reason)
    waiting = Event.objects.filter(endpoint=endpoint, status=EventStatus.PENDING).count()
    subject = f"Webhook endpoint paused: {endpoint.url}"
    body = (
        f"The webhook endpoint {endpoint.url} of {endpoint.newsletter.name} was paused at {now:%Y-%m-%d %H:%M} UTC:\n"
        f"{reason}.\n\n{waiting} events wait for it and are kept. Fix the receiver, then resume the endpoint "
        "in the admin (Webhooks › Endpoints › Resume): they are delivered in order."
    )
    try:
        mail_admins(subject, body)
        if endpoint.owner_email:
            EmailMessage(subject=subject, body=body, to=[endpoint.owner_email]).send()
    except (smtplib.SMTPException, OSError) as error:
        logger.error("Cannot mail the pause of webhook endpoint %s: %s", endpoint.pk, error)
    return True


def endpoints_resume(*, endpoint_ids: list[int]) -> int:
    """Resume paused endpoints: their waiting events are due at once; return how many were paused."""
    return Endpoint.objects.filter(pk__in=endpoint_ids, paused_at__isnull=False).update(
        paused_at=None, pause_reason="", failures=0, failing_since=None, retry_at=None
    )


def events_replay(*, event_ids: list[int]) -> list[int]:
    """Send these events again, same id and body, oldest first among what waits; return their endpoints.

    An endpoint backing off is made due at once; a paused one stays paused until resumed.
    """
    endpoint_ids = sorted(set(Event.objects.filter(pk__in=event_ids).values_list("endpoint_id", flat=True)))
    with transaction.atomic():
        Event.objects.filter(pk__in=event_ids).update(status=EventStatus.PENDING, delivered_at=None)
        Endpoint.objects.filter(pk__in=endpoint_ids, paused_at__isnull=True).update(retry_at=None)
    return endpoint_ids


def events_prune(*, now: datetime.datetime) -> int:
    """Delete events delivered more than HOOKS_KEEP_DAYS ago, with their attempts; return how many."""
    cutoff = now - datetime.timedelta(days=hooks_settings.KEEP_DAYS)
    _, deleted = Event.objects.filter(status=EventStatus.DELIVERED, delivered_at__lt=cutoff).delete()
    return deleted.get(Event._meta.label, 0)
