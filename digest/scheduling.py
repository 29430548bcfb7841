"""When a subscription is due: send-time occurrences in the reader's time zone, and the due query.

Daily and weekly subscriptions store `next_due_at`, the next occurrence of the newsletter's
local send time (on its weekday for weekly) in the subscriber's time zone. Immediate ones
are idle (`next_due_at` NULL) until an issue newer than their cursor becomes visible; the
run then wakes them with one UPDATE per newsletter. Either way "who is due" is one indexed
range query on `next_due_at`.
"""

import datetime
import logging
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Exists, Max, OuterRef, Q, QuerySet

from digest.conf import digest_settings
from digest.models import OPEN_STATUSES, Delivery
from newsletters.models import (
    Frequency,
    Issue,
    IssueStatus,
    Newsletter,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)

logger = logging.getLogger(__name__)

PERIODS = {
    Frequency.IMMEDIATE: datetime.timedelta(days=1),
    Frequency.DAILY: datetime.timedelta(days=1),
    Frequency.WEEKLY: datetime.timedelta(days=7),
}


def settled(now: datetime.datetime) -> datetime.datetime:
    """Return the latest moment a window may end at in a run at `now`.

    Issues are saved with a publish time no earlier than the moment of saving; waiting
    DIGEST_SETTLE_SECONDS means a window never closes before such a save has committed.
    """
    return now - datetime.timedelta(seconds=digest_settings.SETTLE_SECONDS)


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    """Return the zone; one this host does not know (tzdata differs between hosts) is UTC, logged once."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("Time zone %r is unknown on this host: its readers are scheduled in UTC.", name)
        return ZoneInfo("UTC")


def _occurrence_on(day: datetime.date, send_time: datetime.time, tz: ZoneInfo) -> datetime.datetime:
    # A send time in a spring-forward gap resolves (fold=0) to the instant after the gap;
    # in a fall-back overlap, to the first of the two: one send per local day either way.
    return datetime.datetime.combine(day, send_time, tzinfo=tz).astimezone(datetime.UTC)


def occurrence_next(
    *, frequency: str, send_time: datetime.time, weekday: int, tz_name: str, after: datetime.datetime
) -> datetime.datetime:
    """Return the first send-time occurrence strictly after `after` (UTC)."""
    tz = _zone(tz_name)
    day = after.astimezone(tz).date() - datetime.timedelta(days=1)
    for _ in range(10):
        if frequency != Frequency.WEEKLY or day.weekday() == weekday:
            candidate = _occurrence_on(day, send_time, tz)
            if candidate > after:
                return candidate
        day += datetime.timedelta(days=1)
    raise AssertionError("an occurrence exists within ten days")


def occurrence_last(
    *, frequency: str, send_time: datetime.time, weekday: int, tz_name: str, at: datetime.datetime
) -> datetime.datetime:
    """Return the latest send-time occurrence at or before `at` (UTC)."""
    tz = _zone(tz_name)
    day = at.astimezone(tz).date() + datetime.timedelta(days=1)
    for _ in range(10):
        if frequency != Frequency.WEEKLY or day.weekday() == weekday:
            candidate = _occurrence_on(day, send_time, tz)
            if candidate <= at:
                return candidate
        day -= datetime.timedelta(days=1)
    raise AssertionError("an occurrence exists within ten days")


def schedule_of(subscription: Subscription) -> dict:
    """The occurrence_next/occurrence_last arguments of a daily or weekly subscription."""
    return {
        "frequency": subscription.frequency,
        "send_time": subscription.newsletter.send_time,
        "weekday": subscription.newsletter.weekly_day,
        "tz_name": subscription.subscriber.timezone,
    }


def subscription_next_due(subscription: Subscription, *, after: datetime.datetime) -> datetime.datetime | None:
    """Return when a subscription is next due after `after`; None for immediate ones (idle)."""
    if subscription.frequency == Frequency.IMMEDIATE:
        return None
    return occurrence_next(after=after, **schedule_of(subscription))


def _live(newsletter_ids: list[int] | None) -> Q:
    condition = Q(status=SubscriptionStatus.ACTIVE, subscriber__status=SubscriberStatus.ACTIVE, newsletter__active=True)
    if newsletter_ids is not None:
        condition &= Q(newsletter_id__in=newsletter_ids)
    return condition


def latest_visible(*, now: datetime.datetime, newsletter_ids: list[int] | None) -> dict[int, datetime.datetime]:
    """Map each newsletter to the publish time of its newest issue visible in a closed window."""
    issues = Issue.objects.filter(status=IssueStatus.PUBLISHED, publish_at__lte=settled(now))
    if newsletter_ids is not None:
        issues = issues.filter(newsletter_id__in=newsletter_ids)
    return dict(
        issues.values("newsletter_id").annotate(latest=Max("publish_at")).values_list("newsletter_id", "latest")
    )


def subscriptions_schedule(*, now: datetime.datetime, newsletter_ids: list[int] | None = None) -> int:
    """Give daily and weekly subscriptions without one a `next_due_at`, and wake immediate ones.

    New subscriptions, and those whose frequency or status just changed, have
    `next_due_at` NULL. Their schedule runs from their cursor (or, for a new one, from
    when it was created), so one that waited for this run is due at once. Returns how
    many subscriptions this touched.
    """
    touched = 0
    pending = (
        Subscription.objects.filter(_live(newsletter_ids), next_due_at__isnull=True)
        .exclude(frequency=Frequency.IMMEDIATE)
        .select_related("newsletter", "subscriber")
        .only(
            "id",
            "frequency",
            "cursor",
            "created_at",
            "newsletter__send_time",
            "newsletter__weekly_day",
            "subscriber__timezone",
        )
    )
    batch = []
    for subscription in pending.iterator(chunk_size=2000):
        subscription.next_due_at = subscription_next_due(
            subscription, after=subscription.cursor or subscription.created_at
        )
        batch.append(subscription)
        if len(batch) >= 2000:
            touched += _save_next_due(batch)
            batch = []
    touched += _save_next_due(batch)

    for newsletter_id, latest in latest_visible(now=now, newsletter_ids=newsletter_ids).items():
        idle = Subscription.objects.filter(
            _live([newsletter_id]), frequency=Frequency.IMMEDIATE, next_due_at__isnull=True
        ).filter(Q(cursor__isnull=True) | Q(cursor__lt=latest))
        touched += idle.update(next_due_at=latest)
    return touched


def _save_next_due(batch: list[Subscription]) -> int:
    if batch:
        Subscription.objects.bulk_update(batch, ["next_due_at"])
    return len(batch)


def subscriptions_due(*, now: datetime.datetime, newsletter_ids: list[int] | None = None) -> QuerySet[Subscription]:
    """Subscriptions whose digest is due at `now` and that have none in flight."""
    in_flight = Delivery.objects.filter(subscription=OuterRef("pk"), status__in=OPEN_STATUSES)
    return (
        Subscription.objects.filter(_live(newsletter_ids), next_due_at__lte=settled(now))
        .exclude(Exists(in_flight))
        .select_related("newsletter", "subscriber")
        .order_by("id")
    )


def newsletters_selected(slug: str | None) -> list[int] | None:
    """Resolve `--newsletter SLUG` to ids (None: all newsletters)."""
    if slug is None:
        return None
    if "\x00" in slug:  # PostgreSQL refuses NUL in a query parameter; no slug has one
        return []
    return list(Newsletter.objects.filter(slug=slug).values_list("id", flat=True))
