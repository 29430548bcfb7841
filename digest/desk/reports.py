"""One issue's audience before it goes out, and its report after: digests, outcomes, bounces and complaints."""

import datetime
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef
from django.utils import timezone

from digest.desk.dashboard import FREQUENCIES, OUTCOMES, audience_groups, next_run_after, outcome_of
from digest.models import BounceEvent, BounceKind, Delivery, DeliveryStatus, LinkCount, carrying
from newsletters.models import (
    Frequency,
    Issue,
    SubscriptionStatus,
)


@dataclass
class FrequencyPlan:
    """When one frequency's readers get an issue: counts, first and last send, readers per day."""

    frequency: str
    readers: int = 0
    first: datetime.datetime | None = None
    last: datetime.datetime | None = None
    per_day: Counter = field(default_factory=Counter)

    def add(self, moment: datetime.datetime, readers: int) -> None:
        self.readers += readers
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)
        self.per_day[timezone.localdate(moment)] += readers

    @property
    def days(self) -> list[tuple[datetime.date, int]]:
        return sorted(self.per_day.items())


def issue_audience(*, issue: Issue, now: datetime.datetime) -> tuple[datetime.datetime, list[FrequencyPlan]]:
    """Who gets this issue and when, if it is published at its publish time (or now).

    Immediate readers get it at the first run after it settles; daily readers at their
    next local send time; weekly readers on the newsletter's weekday, in their time zone.
    Counts today's live readers.
    """
    publish_at = issue.publish_at if issue.publish_at and issue.publish_at > now else now
    plans = {frequency.value: FrequencyPlan(frequency.value) for frequency in FREQUENCIES}
    first_run = next_run_after(publish_at)
    for group in audience_groups(newsletter_id=issue.newsletter_id):
        if group.frequency == Frequency.IMMEDIATE:
            plans[group.frequency].add(first_run, group.readers)
        else:
            # The digest of the window ending at that send time goes out at the first run after it.
            plans[group.frequency].add(next_run_after(group.next_send(after=publish_at)), group.readers)
    return publish_at, [plan for plan in plans.values() if plan.readers]


@dataclass
class IssueReport:
    digests: int
    by_outcome: Counter
    unsubscribed_after: int
    bounces: int
    complaints: int


def deliveries_carrying(issue: Issue):
    """The digests whose window holds this issue's publish time: those that carried it."""
    return Delivery.objects.filter(carrying(newsletter=issue.newsletter_id, publish_at=issue.publish_at))


def links_top(*, issue: Issue, limit: int = 10) -> list[LinkCount]:
    """The issue's most followed links (newsletters with count_links on), people's follows first."""
    return list(LinkCount.objects.filter(issue=issue).order_by("-clicks", "-scanner_clicks", "url")[:limit])


def issue_report(*, issue: Issue) -> IssueReport:
    """How many digests carried a published issue, by outcome, and how many readers left after it.

    "Left after it": the reader unsubscribed after this digest was sent and before any later
    one was. Bounces (hard and soft) and complaints are the events that came back about
    these digests.
    """
    carried = deliveries_carrying(issue)
    by_outcome: Counter = Counter({name: 0 for name in OUTCOMES})
    for status, n in carried.values_list("status").annotate(n=Count("id")).order_by():
        by_outcome[outcome_of(status)] += n
    later = Delivery.objects.filter(
        subscription=OuterRef("subscription"),
        status=DeliveryStatus.SENT,
        sent_at__gt=OuterRef("sent_at"),
        sent_at__lte=OuterRef("subscription__unsubscribed_at"),
    )
    left = (
        carried.filter(
            status=DeliveryStatus.SENT,
            subscription__status=SubscriptionStatus.UNSUBSCRIBED,
            subscription__unsubscribed_at__gte=F("sent_at"),
        )
        .exclude(Exists(later))
        .count()
    )
    events = Counter(
        dict(BounceEvent.objects.filter(delivery__in=carried).values_list("kind").annotate(n=Count("id")).order_by())
    )
    return IssueReport(
        digests=sum(by_outcome.values()),
        by_outcome=by_outcome,
        unsubscribed_after=left,
        bounces=events[BounceKind.HARD] + events[BounceKind.SOFT],
        complaints=events[BounceKind.COMPLAINT],
    )
