"""The editors' dashboard: aggregates, the daily rollup, charts with the right numbers, permissions."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from digest.desk.dashboard import (
    deliveries_timeline,
    delivery_days,
    due_next_days,
    readers_count,
    readers_timeline,
)
from digest.models import Delivery, DeliveryDay, DeliveryStatus, Run
from digest.run import digest_run
from newsletters.models import Frequency, SubscriberStatus, SubscriptionStatus
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
UTC = datetime.UTC


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def deliver(subscription, *, end, status=DeliveryStatus.SENT, start=None):
    return Delivery.objects.create(
        subscription=subscription,
        newsletter=subscription.newsletter,
        window_start=start or end - datetime.timedelta(days=1),
        window_end=end,
        status=status,
        sent_at=end if status == DeliveryStatus.SENT else None,
    )


def chart_values(html: str, title: str) -> dict[str, int]:
    """Sum each series' data-value in the SVG chart with this title."""
    svg = re.search(r'<svg[^>]*aria-label="' + re.escape(title) + r'".*?</svg>', html, re.S).group(0)
    totals: dict[str, int] = {}
    for series, value in re.findall(r'data-series="([^"]+)" data-value="(\d+)"', svg):
        totals[series] = totals.get(series, 0) + int(value)
    return totals


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_readers_by_status_takes_the_persons_state_first():
    newsletter = NewsletterFactory()
    SubscriptionFactory.create_batch(3, newsletter=newsletter)
    SubscriptionFactory(newsletter=newsletter, frequency=Frequency.WEEKLY)
    SubscriptionFactory(newsletter=newsletter, status=SubscriptionStatus.PAUSED)
    SubscriptionFactory(newsletter=newsletter, status=SubscriptionStatus.UNSUBSCRIBED)
    SubscriptionFactory(newsletter=newsletter, subscriber=SubscriberFactory(status=SubscriberStatus.SUPPRESSED))
    SubscriptionFactory(
        newsletter=newsletter,
        status=SubscriptionStatus.PENDING,
        subscriber=SubscriberFactory(status=SubscriberStatus.PENDING),
    )
    SubscriptionFactory()  # another newsletter
    readers = readers_count(newsletter_id=newsletter.pk)
    assert dict(readers.by_status) == {"active": 4, "pending": 1, "paused": 1, "unsubscribed": 1, "suppressed": 1}
    assert dict(readers.by_frequency) == {"immediate": 0, "daily": 3, "weekly": 1, "fortnightly": 0, "monthly": 0}
    assert readers.people == 8
    assert readers_count().by_status["active"] == 5


def test_readers_timeline_counts_per_day_and_per_week(settings):
    now = at(2026, 11, 20, 12)
    newsletter = NewsletterFactory()
    old = SubscriptionFactory(newsletter=newsletter)
    new = SubscriptionFactory(newsletter=newsletter)
    type(old).objects.filter(pk=old.pk).update(
        created_at=at(2026, 11, 18, 9), status=SubscriptionStatus.UNSUBSCRIBED, unsubscribed_at=at(2026, 11, 20, 8)
    )
    type(new).objects.filter(pk=new.pk).update(created_at=at(2026, 11, 20, 9))
    type(new.subscriber).objects.filter(pk=new.subscriber.pk).update(confirmed_at=at(2026, 11, 20, 9))
    type(old.subscriber).objects.filter(pk=old.subscriber.pk).update(confirmed_at=at(2025, 1, 1))
    daily = readers_timeline(days=30, now=now, newsletter_id=newsletter.pk)
    assert len(daily.buckets) == 30 and daily.buckets[-1] == datetime.date(2026, 11, 20)
    assert daily.series["subscribed"][-3:] == [1, 0, 1]
    assert daily.series["unsubscribed"][-1] == 1 and sum(daily.series["unsubscribed"]) == 1
    assert sum(daily.series["confirmed"]) == 1
    weekly = readers_timeline(days=365, now=now, newsletter_id=newsletter.pk)
    assert weekly.by_week and weekly.buckets[-1] == datetime.date(2026, 11, 16)  # a Monday
    assert weekly.series["subscribed"][-1] == 2


def test_deliveries_per_day_roll_up_settled_days_only():
    now = at(2026, 11, 20, 12)
    newsletter = NewsletterFactory()
    subscriptions = SubscriptionFactory.create_batch(4, newsletter=newsletter)
    deliver(subscriptions[0], end=at(2026, 11, 18, 8))
    deliver(subscriptions[1], end=at(2026, 11, 18, 8), status=DeliveryStatus.FAILED)
    deliver(subscriptions[2], end=at(2026, 11, 19, 8), status=DeliveryStatus.DEFERRED)  # still open
    deliver(subscriptions[3], end=at(2026, 11, 20, 8))  # today
    timeline = deliveries_timeline(days=30, now=now)
    assert timeline.series["sent"][-3:] == [1, 0, 1]
    assert timeline.series["failed"][-3:] == [1, 0, 0]
    assert timeline.series["deferred"][-2] == 1
    rolled = set(DeliveryDay.objects.values_list("day", "status", "count"))
    # The 18th is over and settled; the 19th has an open digest; today is not over.
    assert (datetime.date(2026, 11, 18), "sent", 1) in rolled and (datetime.date(2026, 11, 18), "failed", 1) in rolled
    assert not DeliveryDay.objects.filter(day__in=[datetime.date(2026, 11, 19), datetime.date(2026, 11, 20)]).exists()
    # Empty settled days are remembered too, so they are not counted again.
    assert DeliveryDay.objects.filter(day=datetime.date(2026, 11, 1), newsletter=None, count=0).exists()
    # A rolled-up day is read from the rollup: a change the rollup does not know about stays unseen …
    Delivery.objects.filter(status=DeliveryStatus.FAILED).update(status=DeliveryStatus.SENT)
    assert deliveries_timeline(days=30, now=now).series["sent"][-3] == 1
    # … until that day is forgotten, as the retry action does.
    from digest.desk.dashboard import delivery_days_forget

    delivery_days_forget(Delivery.objects.all())
    assert deliveries_timeline(days=30, now=now).series["sent"][-3] == 2


def test_deliveries_per_newsletter():
    now = at(2026, 11, 20, 12)
    one, two = NewsletterFactory(), NewsletterFactory()
    deliver(SubscriptionFactory(newsletter=one), end=at(2026, 11, 18, 8))
    deliver(SubscriptionFactory(newsletter=two), end=at(2026, 11, 18, 8))
    deliver(SubscriptionFactory(newsletter=two), end=at(2026, 11, 18, 9))
    assert sum(deliveries_timeline(days=30, now=now, newsletter_id=two.pk).series["sent"]) == 2
    assert sum(deliveries_timeline(days=30, now=now, newsletter_id=one.pk).series["sent"]) == 1
    assert sum(deliveries_timeline(days=30, now=now).series["sent"]) == 3
    counts = delivery_days(first=datetime.date(2026, 11, 18), today=datetime.date(2026, 11, 20))
    assert counts[(datetime.date(2026, 11, 18), two.pk, "sent")] == 2


def test_due_next_days_per_frequency_in_each_readers_time_zone(settings):
    settings.TIME_ZONE = "UTC"
    now = at(2026, 11, 20, 12)  # a Friday
    newsletter = NewsletterFactory(send_time=datetime.time(8, 0), weekly_day=0)  # Mondays
    for tz in ["UTC", "Pacific/Auckland"]:  # 08:00 in Auckland is 19:00 UTC the day before
        SubscriptionFactory(newsletter=newsletter, frequency=Frequency.DAILY, subscriber=SubscriberFactory(timezone=tz))
    SubscriptionFactory(newsletter=newsletter, frequency=Frequency.WEEKLY, subscriber=SubscriberFactory(timezone="UTC"))
    SubscriptionFactory.create_batch(2, newsletter=newsletter, frequency=Frequency.IMMEDIATE)
    SubscriptionFactory(newsletter=newsletter, frequency=Frequency.DAILY, status=SubscriptionStatus.PAUSED)
    IssueFactory(newsletter=newsletter, publish_at=at(2026, 11, 22, 10))
    due = due_next_days(now=now)
    assert due.days[0] == datetime.date(2026, 11, 20)
    # Friday: the UTC reader's 08:00 has passed; the Auckland reader's Saturday 08:00 is 19:00 UTC today.
    assert due.series["daily"] == [1, 2, 2, 2, 2, 2, 2]
    assert due.series["weekly"] == [0, 0, 0, 1, 0, 0, 0]  # Monday the 23rd
    assert due.series["immediate"] == [0, 0, 2, 0, 0, 0, 0]  # the issue scheduled for Sunday


def test_a_run_is_recorded_and_listed(client, editor, smtp_server):
    newsletter = NewsletterFactory()
    subscription = SubscriptionFactory(newsletter=newsletter, frequency=Frequency.IMMEDIATE)
    type(subscription).objects.filter(pk=subscription.pk).update(created_at=timezone.now() - datetime.timedelta(days=2))
    IssueFactory(newsletter=newsletter, publish_at=timezone.now() - datetime.timedelta(hours=2))
    summary = digest_run(now=timezone.now())
    assert summary.sent == 1
    run = Run.objects.get()
    assert run.summary["sent"] == 1 and run.finished_at >= run.started_at
    digest_run(now=timezone.now(), dry_run=True)
    assert Run.objects.count() == 1  # a dry run changes nothing, not even the list of runs
    page = client.get(reverse("dashboard")).content.decode()
    assert "Last runs" in page
    assert re.search(
        r'data-label="Due">1</td><td [^>]*data-label="Sent">1</td><td [^>]*data-label="Deferred">0</td>', page
    )


def test_dashboard_shows_the_numbers_in_its_charts(client, editor):
    newsletter = NewsletterFactory(name="Weekly <Notes>")
    subscriptions = SubscriptionFactory.create_batch(3, newsletter=newsletter)
    SubscriptionFactory(newsletter=newsletter, status=SubscriptionStatus.PAUSED)
    now = timezone.now()
    deliver(subscriptions[0], end=now - datetime.timedelta(days=2))
    deliver(subscriptions[1], end=now - datetime.timedelta(days=2), status=DeliveryStatus.FAILED)
    response = client.get(reverse("dashboard"), {"newsletter": newsletter.pk, "days": "90"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Weekly &lt;Notes&gt;" in page and "<Notes>" not in page
    assert chart_values(page, "Readers by status") == {"active": 3, "paused": 1}
    assert chart_values(page, "Active readers by frequency") == {"daily": 3}
    assert chart_values(page, "Digests per day by outcome") == {"sent": 1, "failed": 1}
    assert chart_values(page, "Readers due a digest in the next 7 days, per frequency")["daily"] >= 3 * 6
    assert page.count('<svg class="chart"') == 5
    # The index links to it first.
    index = client.get(reverse("admin:index")).content.decode()
    assert index.index(reverse("dashboard")) < index.index(reverse("admin:newsletters_issue_changelist"))


def test_dashboard_ignores_unknown_filters(client, editor):
    response = client.get(reverse("dashboard"), {"newsletter": "x'; drop", "days": "100000"})
    assert response.status_code == 200 and "Dashboard" in response.content.decode()


def test_dashboard_needs_staff_login_and_rights(client):
    url = reverse("dashboard")
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    user = get_user_model().objects.create_user("newbie", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(url).status_code == 403
    assert reverse("dashboard") not in client.get(reverse("admin:index")).content.decode()
    user.user_permissions.add(
        Permission.objects.get(codename="view_subscription"), Permission.objects.get(codename="view_delivery")
    )
    user = get_user_model().objects.get(pk=user.pk)
    client.force_login(user)
    assert client.get(url).status_code == 200


def test_retrying_failed_deliveries_recounts_their_day(client, editor):
    now = timezone.now()
    subscription = SubscriptionFactory()
    failed = deliver(subscription, end=now - datetime.timedelta(days=3), status=DeliveryStatus.FAILED)
    deliveries_timeline(days=30, now=now)
    day = timezone.localdate(failed.window_end)
    assert DeliveryDay.objects.filter(day=day, status="failed", count=1).exists()
    client.post(
        reverse("admin:digest_delivery_changelist"), {"action": "retry", "_selected_action": [failed.pk]}, follow=True
    )
    assert not DeliveryDay.objects.filter(day=day).exists()
    timeline = deliveries_timeline(days=30, now=now)
    assert timeline.series["queued"][-4] == 1 and timeline.series["failed"][-4] == 0
    assert not DeliveryDay.objects.filter(day=day).exists()  # open again: counted live until settled


def test_a_day_is_counted_again_when_its_digests_are_planned_after_the_dashboard_counted_it(
    client, editor, smtp_server, settings
):
    """Opened before, during and after a send whose digests belong to a day already over (a late run)."""
    settings.DIGEST_BATCH_SIZE = 1
    now = timezone.now()
    day = timezone.localdate(now) - datetime.timedelta(days=2)
    # Weekly at midnight two days ago: the run now sends the window that ended then.
    newsletter = NewsletterFactory(weekly_day=day.weekday(), send_time=datetime.time(0, 0))
    subscriptions = SubscriptionFactory.create_batch(3, newsletter=newsletter, frequency=Frequency.WEEKLY)
    type(subscriptions[0]).objects.update(created_at=now - datetime.timedelta(days=10))
    IssueFactory(newsletter=newsletter, publish_at=now - datetime.timedelta(days=3))
    title = "Digests per day by outcome"

    def sent_on_the_chart() -> dict[str, int]:
        return chart_values(client.get(reverse("dashboard")).content.decode(), title)

    assert sent_on_the_chart().get("sent", 0) == 0  # before: the day is over, and rolled up empty
    assert DeliveryDay.objects.filter(day=day, newsletter=None, count=0).exists()
    during = []
    summary = digest_run(now=now, on_batch=lambda done, total: during.append(sent_on_the_chart()))
    assert summary.sent == 3 and Delivery.objects.filter(window_end__date=day).count() == 3
    # During: after the first batch one is sent and two wait; the day stays open.
    assert during[0].get("sent") == 1 and during[0].get("queued") == 2
    assert sent_on_the_chart().get("sent") == 3  # after
    assert DeliveryDay.objects.get(day=day, status=DeliveryStatus.SENT).count == 3
    assert sent_on_the_chart().get("sent") == 3  # read from the new rollup
