"""Reads: querysets the views, feeds and digest engine build on."""

import datetime

from django.db.models import Count, QuerySet

from newsletters.models import (
    Frequency,
    Issue,
    IssueStatus,
    Newsletter,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)


def newsletters_public() -> QuerySet[Newsletter]:
    """Active newsletters, as readers may browse and subscribe to them."""
    return Newsletter.objects.filter(active=True)


def issues_visible(*, newsletter: Newsletter, now: datetime.datetime) -> QuerySet[Issue]:
    """A newsletter's issues that readers may see at `now`, newest first.

    Through the related manager, so each issue knows its newsletter without a query (its URL needs the slug).
    """
    return newsletter.issues.visible(now=now).order_by("-publish_at", "-id")


def issues_published_between(
    *, newsletter_id: int, start: datetime.datetime, end: datetime.datetime
) -> QuerySet[Issue]:
    """Published issues with a publish time in (start, end], oldest first: what one digest window carries."""
    return Issue.objects.filter(
        newsletter_id=newsletter_id, status=IssueStatus.PUBLISHED, publish_at__gt=start, publish_at__lte=end
    ).order_by("publish_at", "id")


def audience_counted(*, newsletter: Newsletter) -> dict[str, int]:
    """Readers a newly published issue of `newsletter` goes to, per frequency (active readers only)."""
    rows = (
        Subscription.objects.filter(
            newsletter=newsletter, status=SubscriptionStatus.ACTIVE, subscriber__status=SubscriberStatus.ACTIVE
        )
        .values_list("frequency")
        .annotate(readers=Count("id"))
    )
    counts = dict.fromkeys(Frequency.values, 0)
    counts.update(dict(rows))
    return counts
