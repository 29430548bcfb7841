"""When a subscription is due: its stored `next_due_at`, and the due query.

The clock math (send-time occurrences in the reader's time zone) is in newsletters.schedules.

Daily and weekly subscriptions store `next_due_at`, the next occurrence of the newsletter's
local send time (on its weekday for weekly) in the subscriber's time zone. Immediate ones
are idle (`next_due_at` NULL) until an issue newer than their cursor becomes visible; the
run then wakes them with one UPDATE per newsletter. Either way "who is due" is one indexed
range query on `next_due_at`.
"""

import datetime

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
from newsletters.schedules import subscription_next_due


def settled(now: datetime.datetime) -> datetime.datetime:
    """Return the latest moment a window may end at in a run at `now`.

    Issues are saved with a publish time no earlier than the moment of saving; waiting
    DIGEST_SETTLE_SECONDS means a window never closes before such a save has committed.
    """
    return now - datetime.timedelta(seconds=digest_settings.SETTLE_SECONDS)


def _live(newsletter_ids: list[int] | None) -> Q:
    condition = Q(status=SubscriptionStatus.ACTIVE, subscriber__status=SubscriberStatus.ACTIVE, newsletter__active=True)
    if newsletter_ids is not None:
        condition &= Q(newsletter_id__in=newsletter_ids)
    return condition


def _visible(*, now: datetime.datetime, newsletter_ids: list[int] | None) -> QuerySet[Issue]:
    issues = Issue.objects.filter(status=IssueStatus.PUBLISHED, publish_at__lte=settled(now))
    if newsletter_ids is not None:
        issues = issues.filter(newsletter_id__in=newsletter_ids)
    return issues


def latest_visible(*, now: datetime.datetime, newsletter_ids: list[int] | None) -> dict[int, datetime.datetime]:
    """Map each newsletter to the publish time of its newest issue visible in a closed window."""
    issues = _visible(now=now, newsletter_ids=newsletter_ids)
    return dict(
        issues.values("newsletter_id").annotate(latest=Max("publish_at")).values_list("newsletter_id", "latest")
    )


def publish_times(*, now: datetime.datetime, newsletter_ids: list[int] | None) -> dict[int, list[datetime.datetime]]:
    """Map each newsletter to the sorted publish times of its visible issues; the last is latest_visible's."""
    times: dict[int, list[datetime.datetime]] = {}
    issues = _visible(now=now, newsletter_ids=newsletter_ids).order_by("publish_at")
    for newsletter_id, publish_at in issues.values_list("newsletter_id", "publish_at"):
        times.setdefault(newsletter_id, []).append(publish_at)
    return times


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
            "newsletter__monthly_day",
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
