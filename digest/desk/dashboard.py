"""What the editors' dashboard and issue reports show: aggregates over readers, the ledger and runs.

Every figure is one grouped query (no row is loaded per reader or per digest), so pages
stay fast at 100,000 readers and a year of digests (bench/dashboard.py measures it).
Digests per day read the daily rollup (DeliveryDay) for days that are over and whose
digests are all settled, and count the rest live.
"""

import datetime
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Exists, Max, OuterRef
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone

from digest.conf import digest_settings
from digest.crontab import CronSchedule
from digest.models import OPEN_STATUSES, Delivery, DeliveryDay, DeliveryStatus, Run
from newsletters.models import (
    Frequency,
    Issue,
    IssueStatus,
    Newsletter,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletters.schedules import Schedule

# A reader's status on the dashboard: a subscription's, or "suppressed" when its subscriber is.
READER_STATUSES = [
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PENDING,
    SubscriptionStatus.PAUSED,
    SubscriptionStatus.UNSUBSCRIBED,
    SubscriberStatus.SUPPRESSED,
]
FREQUENCIES = list(Frequency)
OUTCOMES = ["sent", "deferred", "failed", "skipped", "queued"]
RANGES = {30: "30 days", 90: "90 days", 365: "a year"}


def outcome_of(status: str) -> str:
    """Pending and sending digests are queued; every other status is its own outcome."""
    return "queued" if status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING) else status


def _reader_status(subscription_status: str, subscriber_status: str) -> str:
    """One status per reader of a newsletter: the person's state wins over the subscription's."""
    if subscriber_status in (SubscriberStatus.SUPPRESSED, SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.PENDING):
        return subscriber_status
    return subscription_status


# ----------------------------------------------------------------------------- readers


@dataclass
class Readers:
    by_status: Counter
    by_frequency: Counter
    people: int

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class SubscriptionCount:
    """Subscriptions sharing a newsletter, a status, their reader's status, a frequency and a time zone."""

    newsletter_id: int
    status: str
    subscriber_status: str
    frequency: str
    tz_name: str
    n: int


def subscriptions_counted(*, newsletter_id: int | None = None) -> list[SubscriptionCount]:
    """Count subscriptions by everything the dashboard groups them by, in one query."""
    subscriptions = Subscription.objects.all()
    if newsletter_id is not None:
        subscriptions = subscriptions.filter(newsletter_id=newsletter_id)
    rows = (
        subscriptions.values_list("newsletter_id", "status", "subscriber__status", "frequency", "subscriber__timezone")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [SubscriptionCount(*row) for row in rows]


def readers_count(*, newsletter_id: int | None = None, counts: list[SubscriptionCount] | None = None) -> Readers:
    """Count subscriptions by reader status and active ones by frequency; count distinct people."""
    if counts is None:
        counts = subscriptions_counted(newsletter_id=newsletter_id)
    by_status: Counter = Counter({status: 0 for status in READER_STATUSES})
    by_frequency: Counter = Counter({frequency.value: 0 for frequency in FREQUENCIES})
    for count in counts:
        reader_status = _reader_status(count.status, count.subscriber_status)
        by_status[reader_status] += count.n
        if reader_status == SubscriptionStatus.ACTIVE:
            by_frequency[count.frequency] += count.n
    # A person reads a newsletter at most once (subscription_unique_pair): one newsletter's readers are people.
    people = sum(by_status.values()) if newsletter_id is not None else Subscriber.objects.count()
    return Readers(by_status=by_status, by_frequency=by_frequency, people=people)


@dataclass
class Timeline:
    """Counts per bucket (a day, or a week from Monday) for each series, oldest first."""

    buckets: list[datetime.date]
    series: dict[str, list[int]]
    by_week: bool

    @property
    def labels(self) -> list[str]:
        return [f"{day:%d %b}" for day in self.buckets]


def _buckets(*, days: int, today: datetime.date) -> tuple[list[datetime.date], bool]:
    """A year is shown by week, shorter ranges by day."""
    first = today - datetime.timedelta(days=days - 1)
    if days > 90:
        monday = first - datetime.timedelta(days=first.weekday())
        return [monday + datetime.timedelta(weeks=i) for i in range((today - monday).days // 7 + 1)], True
    return [first + datetime.timedelta(days=i) for i in range(days)], False


def _day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=timezone.get_current_timezone())


def _bucket_of(day: datetime.date, by_week: bool) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday()) if by_week else day


def readers_timeline(*, days: int, now: datetime.datetime, newsletter_id: int | None = None) -> Timeline:
    """Subscriptions started, readers confirmed and subscriptions stopped, per day (per week for a year)."""
    buckets, by_week = _buckets(days=days, today=timezone.localdate(now))
    start = _day_start(buckets[0])
    tz = timezone.get_current_timezone()
    trunc = TruncWeek if by_week else TruncDate
    subscriptions = Subscription.objects.all()
    confirmed = Subscriber.objects.filter(confirmed_at__gte=start)
    if newsletter_id is not None:
        subscriptions = subscriptions.filter(newsletter_id=newsletter_id)
        confirmed = confirmed.filter(
            Exists(Subscription.objects.filter(subscriber=OuterRef("pk"), newsletter_id=newsletter_id))
        )
    sources = {
        "subscribed": subscriptions.filter(created_at__gte=start).annotate(bucket=trunc("created_at", tzinfo=tz)),
        "confirmed": confirmed.annotate(bucket=trunc("confirmed_at", tzinfo=tz)),
        "unsubscribed": subscriptions.filter(unsubscribed_at__gte=start).annotate(
            bucket=trunc("unsubscribed_at", tzinfo=tz)
        ),
    }
    index = {bucket: i for i, bucket in enumerate(buckets)}
    series = {}
    for name, queryset in sources.items():
        values = [0] * len(buckets)
        for bucket, n in queryset.values_list("bucket").annotate(n=Count("id")).order_by():
            day = bucket.date() if isinstance(bucket, datetime.datetime) else bucket
            if day in index:
                values[index[day]] += n
        series[name] = values
    return Timeline(buckets=buckets, series=series, by_week=by_week)


# --------------------------------------------------------------------- digests per day


def _delivery_counts(start: datetime.date, end: datetime.date) -> dict[tuple[datetime.date, int, str], int]:
    """Count digests by (day their window ended, newsletter, status), for days start..end inclusive."""
    deliveries = Delivery.objects.filter(
        window_end__gte=_day_start(start), window_end__lt=_day_start(end + datetime.timedelta(days=1))
    ).order_by()
    if start == end:  # one day (usually today): no per-row date conversion
        rows = deliveries.values_list("newsletter_id", "status").annotate(n=Count("id"))
        return {(start, newsletter_id, status): n for newsletter_id, status, n in rows}
    rows = (
        deliveries.annotate(day=TruncDate("window_end", tzinfo=timezone.get_current_timezone()))
        .values_list("day", "newsletter_id", "status")
        .annotate(n=Count("id"))
    )
    return {(day, newsletter_id, status): n for day, newsletter_id, status, n in rows}


def _runs_of(days: list[datetime.date]) -> list[tuple[datetime.date, datetime.date]]:
    """Group sorted days into (first, last) runs of consecutive days."""
    runs: list[list[datetime.date]] = []
    for day in days:
        if runs and day - runs[-1][1] == datetime.timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(first, last) for first, last in runs]


def delivery_days(*, first: datetime.date, today: datetime.date) -> dict[tuple[datetime.date, int | None, str], int]:
    """Digests per (day, newsletter, status) from `first` to `today`, rolling up days that are settled.

    A day (in the site's time zone) is rolled up once it is over and none of its digests is
    open (pending, sending, deferred), so its counts no longer change. A digest planned
    after its day was rolled up (a run that came late, a first send after the dashboard
    was opened) reopens that day, and so does an editor's retry (`delivery_days_forget`).
    Days not rolled up are counted live, in one query per run of consecutive days.
    """
    counts: dict[tuple[datetime.date, int | None, str], int] = {}
    through: dict[datetime.date, int] = {}
    rolled = DeliveryDay.objects.filter(day__gte=first, day__lt=today)
    for day, newsletter_id, status, n, through_id in rolled.values_list(
        "day", "newsletter_id", "status", "count", "through_id"
    ):
        through[day] = min(through.get(day, through_id), through_id)
        if newsletter_id is not None:
            counts[(day, newsletter_id, status)] = n
    stale = _planned_late(through, first=first, today=today)
    if stale:
        DeliveryDay.objects.filter(day__in=stale).delete()
        counts = {key: n for key, n in counts.items() if key[0] not in stale}
    missing = [
        first + datetime.timedelta(days=i)
        for i in range((today - first).days + 1)
        if first + datetime.timedelta(days=i) not in through or first + datetime.timedelta(days=i) in stale
    ]
    if not missing:
        return counts
    through_id = Delivery.objects.aggregate(last=Max("id"))["last"] or 0  # read before counting
    fresh: dict[tuple[datetime.date, int, str], int] = {}
    for start, end in _runs_of(missing):
        fresh.update(_delivery_counts(start, end))
    counts.update(fresh)
    open_days = {day for (day, _, status) in fresh if status in OPEN_STATUSES}
    closable = {day for day in missing if day < today and day not in open_days}
    rows = [
        DeliveryDay(day=day, newsletter_id=newsletter_id, status=status, count=n, through_id=through_id)
        for (day, newsletter_id, status), n in fresh.items()
        if day in closable
    ]
    seen = {row.day for row in rows}
    rows += [
        DeliveryDay(day=day, newsletter_id=None, status="", count=0, through_id=through_id) for day in closable - seen
    ]
    DeliveryDay.objects.bulk_create(rows, ignore_conflicts=True)
    return counts


def _planned_late(through: dict[datetime.date, int], *, first: datetime.date, today: datetime.date) -> set:
    """The rolled-up days that got a digest after they were counted (a higher Delivery id).

    Digests planned on time end today or later, so this reads only the few planned late.
    """
    if not through:
        return set()
    tz = timezone.get_current_timezone()
    late = Delivery.objects.filter(
        id__gt=min(through.values()), window_end__gte=_day_start(first), window_end__lt=_day_start(today)
    ).values_list("id", "window_end")
    stale = set()
    for delivery_id, end in late.iterator():
        day = timezone.localtime(end, tz).date()
        if day in through and delivery_id > through[day]:
            stale.add(day)
    return stale


def delivery_days_forget(deliveries) -> None:
    """Drop the rollup of the days these deliveries belong to (they are open again)."""
    tz = timezone.get_current_timezone()
    days = {timezone.localtime(end, tz).date() for end in deliveries.values_list("window_end", flat=True)}
    DeliveryDay.objects.filter(day__in=days).delete()


def deliveries_timeline(*, days: int, now: datetime.datetime, newsletter_id: int | None = None) -> Timeline:
    """Digests per day (per week for a year) by outcome: sent, deferred, failed, skipped, queued."""
    today = timezone.localdate(now)
    buckets, by_week = _buckets(days=days, today=today)
    index = {bucket: i for i, bucket in enumerate(buckets)}
    series = {name: [0] * len(buckets) for name in OUTCOMES}
    for (day, counted_newsletter, status), n in delivery_days(first=buckets[0], today=today).items():
        if newsletter_id is not None and counted_newsletter != newsletter_id:
            continue
        bucket = _bucket_of(day, by_week)
        if bucket in index:
            series[outcome_of(status)][index[bucket]] += n
    return Timeline(buckets=buckets, series=series, by_week=by_week)


# ------------------------------------------------------------------------ runs and due


def runs_recent(*, limit: int = 10) -> list[Run]:
    """The latest digest runs, newest first."""
    return list(Run.objects.all()[:limit])


@dataclass(frozen=True)
class AudienceGroup:
    """Live subscriptions that share a newsletter schedule, a frequency and a time zone."""

    newsletter_id: int
    send_time: datetime.time
    weekday: int
    monthly_day: int
    frequency: str
    tz_name: str
    readers: int

    def next_send(self, *, after: datetime.datetime) -> datetime.datetime:
        """The first send time at or after `after` for this group's scheduled (not immediate) readers."""
        schedule = Schedule(self.frequency, self.send_time, self.weekday, self.tz_name, self.monthly_day)
        return schedule.next_after(after - datetime.timedelta(microseconds=1))


def audience_groups(
    *, newsletter_id: int | None = None, counts: list[SubscriptionCount] | None = None
) -> list[AudienceGroup]:
    """Live subscriptions (scheduling's: active readers of active newsletters) by schedule, frequency and zone."""
    if counts is None:
        counts = subscriptions_counted(newsletter_id=newsletter_id)
    schedules = {
        pk: (send_time, weekday, monthly_day)
        for pk, send_time, weekday, monthly_day in Newsletter.objects.filter(active=True).values_list(
            "pk", "send_time", "weekly_day", "monthly_day"
        )
    }
    readers: Counter = Counter()
    for count in counts:
        live = count.status == SubscriptionStatus.ACTIVE and count.subscriber_status == SubscriberStatus.ACTIVE
        if live and count.newsletter_id in schedules:
            readers[(count.newsletter_id, *schedules[count.newsletter_id], count.frequency, count.tz_name)] += count.n
    return [AudienceGroup(*key, readers=n) for key, n in readers.items()]


def next_run_after(moment: datetime.datetime) -> datetime.datetime:
    """When the digest job first runs after `moment` settles (DIGEST_CRON_SCHEDULE, in the site's time zone)."""
    schedule = CronSchedule.parse(digest_settings.CRON_SCHEDULE)
    ready = moment + datetime.timedelta(seconds=digest_settings.SETTLE_SECONDS)
    return schedule.next_after(timezone.localtime(ready) - datetime.timedelta(seconds=1))


@dataclass
class DueDays:
    days: list[datetime.date]
    series: dict[str, list[int]]

    @property
    def labels(self) -> list[str]:
        return [f"{day:%a %d}" for day in self.days]


def due_next_days(
    *,
    now: datetime.datetime,
    days: int = 7,
    newsletter_id: int | None = None,
    counts: list[SubscriptionCount] | None = None,
) -> DueDays:
    """Readers due a digest on each of the next `days` days, per frequency.

    Daily, weekly, fortnightly and monthly readers are counted at their local send times (a digest goes out only
    if something was published in its window); immediate readers on the days scheduled
    issues come out, once per issue.
    """
    today = timezone.localdate(now)
    day_list = [today + datetime.timedelta(days=i) for i in range(days)]
    index = {day: i for i, day in enumerate(day_list)}
    end = _day_start(today + datetime.timedelta(days=days))
    series = {frequency.value: [0] * days for frequency in FREQUENCIES}
    immediate: Counter = Counter()
    for group in audience_groups(newsletter_id=newsletter_id, counts=counts):
        if group.frequency == Frequency.IMMEDIATE:
            immediate[group.newsletter_id] += group.readers
            continue
        moment = group.next_send(after=now)
        while moment < end:
            series[group.frequency][index[timezone.localdate(moment)]] += group.readers
            moment = group.next_send(after=moment + datetime.timedelta(seconds=1))
    scheduled = Issue.objects.filter(status=IssueStatus.PUBLISHED, publish_at__gt=now, publish_at__lt=end)
    if newsletter_id is not None:
        scheduled = scheduled.filter(newsletter_id=newsletter_id)
    for issue_newsletter, publish_at in scheduled.values_list("newsletter_id", "publish_at"):
        series[Frequency.IMMEDIATE][index[timezone.localdate(publish_at)]] += immediate[issue_newsletter]
    return DueDays(days=day_list, series=series)


# ------------------------------------------------------------------------------ issues
