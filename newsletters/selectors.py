"""Reads: querysets the views, feeds and digest engine build on."""

import datetime

from django.db.models import QuerySet

from newsletters.models import Issue, Newsletter


def newsletters_public() -> QuerySet[Newsletter]:
    """Active newsletters, as readers may browse and subscribe to them."""
    return Newsletter.objects.filter(active=True)


def issues_visible(*, newsletter: Newsletter, now: datetime.datetime) -> QuerySet[Issue]:
    """A newsletter's issues that readers may see at `now`, newest first."""
    return Issue.objects.visible(now=now).filter(newsletter=newsletter).order_by("-publish_at", "-id")
