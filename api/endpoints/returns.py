"""Bounce events and the dashboard's figures, read only."""

from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router

from api import engine
from api.auth import READ
from api.pagination import PAGE_SIZE, PAGE_SIZE_MAX, Page, filtered, paginate
from api.problems import answers
from api.schemas import BounceOut, DailyStatsOut, Id, IssueStatsOut, Moment
from newsletters.models import Issue

router = Router(tags=["bounces and stats"], auth=READ)

# Not `raw`: the returned message itself stays in the admin.
BOUNCE_FIELDS = (
    "id",
    "subscriber_id",
    "delivery_id",
    "kind",
    "action",
    "source",
    "occurred_at",
    "status",
    "diagnostic",
)


@router.get("/bounces", response=answers(200, Page[BounceOut]), summary="List bounce events")
def bounce_list(
    request,
    subscriber: Id | None = None,
    kind: Literal["hard", "soft", "complaint", "unsubscribed", "lifted"] | None = None,
    occurred_after: Moment | None = None,
    occurred_before: Moment | None = None,
    cursor: str | None = None,
    limit: int = Query(PAGE_SIZE, ge=1, le=PAGE_SIZE_MAX),
):
    """Bounces, complaints and ESP events in id order (the order they were stored), and what the policy did."""
    queryset = filtered(
        engine.BounceEvent.objects.all(),
        subscriber_id=subscriber,
        kind=kind,
        occurred_at__gte=occurred_after,
        occurred_at__lt=occurred_before,
    )
    return paginate(queryset, cursor=cursor, limit=limit, values=BOUNCE_FIELDS)


@router.get("/stats/issues/{issue_id}", response=answers(200, IssueStatsOut), summary="How an issue did")
def issue_stats(request, issue_id: Id):
    """The issue report's figures: digests that carried it by outcome, readers who left after it, bounces, complaints."""
    issue = get_object_or_404(Issue, pk=issue_id)
    if issue.publish_at is None:
        report = {"digests": 0, "by_outcome": dict.fromkeys(engine.OUTCOMES, 0)}
        return {"issue": issue.pk, **report, "unsubscribed_after": 0, "bounces": 0, "complaints": 0}
    report = engine.issue_report(issue=issue)
    return {
        "issue": issue.pk,
        "digests": report.digests,
        "by_outcome": dict(report.by_outcome),
        "unsubscribed_after": report.unsubscribed_after,
        "bounces": report.bounces,
        "complaints": report.complaints,
    }


@router.get("/stats/days", response=answers(200, DailyStatsOut), summary="Readers and digests per day")
def daily_stats(request, days: int = Query(30, ge=1, le=366), newsletter: Id | None = None):
    """The dashboard's charts as numbers: per day (per week past 90 days) in the site's time zone, oldest first."""
    now = timezone.now()
    readers = engine.readers_timeline(days=days, now=now, newsletter_id=newsletter)
    digests = engine.deliveries_timeline(days=days, now=now, newsletter_id=newsletter)
    buckets = [
        {
            "start": start,
            "readers": {name: values[i] for name, values in readers.series.items()},
            "digests": {name: values[i] for name, values in digests.series.items()},
        }
        for i, start in enumerate(readers.buckets)
    ]
    return {"by_week": readers.by_week, "buckets": buckets}
