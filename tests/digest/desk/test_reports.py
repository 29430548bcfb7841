"""An issue's report (digests that carried it, outcomes, who left after it) and "who gets this and when"."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from digest.desk.dashboard import next_run_after
from digest.desk.reports import issue_audience, issue_report
from digest.models import BounceAction, BounceEvent, BounceKind, Delivery, DeliveryStatus
from newsletters.models import Frequency, IssueStatus, Subscription, SubscriptionStatus
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
UTC = datetime.UTC


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def deliver(subscription, *, start, end, status=DeliveryStatus.SENT, sent_at=None):
    return Delivery.objects.create(
        subscription=subscription,
        newsletter=subscription.newsletter,
        window_start=start,
        window_end=end,
        status=status,
        sent_at=sent_at or (end if status == DeliveryStatus.SENT else None),
    )


def test_report_counts_the_digests_whose_window_held_the_issue():
    newsletter = NewsletterFactory()
    issue = IssueFactory(newsletter=newsletter, publish_at=at(2026, 11, 10, 12))
    a, b, c, d, e = SubscriptionFactory.create_batch(5, newsletter=newsletter)
    deliver(a, start=at(2026, 11, 10, 8), end=at(2026, 11, 11, 8))
    deliver(b, start=at(2026, 11, 9, 8), end=at(2026, 11, 16, 8), status=DeliveryStatus.FAILED)
    deliver(c, start=at(2026, 11, 10, 8), end=at(2026, 11, 11, 8), status=DeliveryStatus.DEFERRED)
    deliver(d, start=at(2026, 11, 10, 12), end=at(2026, 11, 11, 8))  # starts at the publish time: not in it
    deliver(e, start=at(2026, 11, 9, 8), end=at(2026, 11, 10, 8))  # ended before it
    deliver(SubscriptionFactory(), start=at(2026, 11, 10, 8), end=at(2026, 11, 11, 8))  # another newsletter
    report = issue_report(issue=issue)
    assert report.digests == 3
    assert report.by_outcome["sent"] == 1 and report.by_outcome["failed"] == 1 and report.by_outcome["deferred"] == 1


def test_unsubscribed_after_it_counts_readers_who_left_before_their_next_digest():
    newsletter = NewsletterFactory()
    issue = IssueFactory(newsletter=newsletter, publish_at=at(2026, 11, 10, 12))
    left, stayed_a_while, stayed = SubscriptionFactory.create_batch(3, newsletter=newsletter)
    for subscription in (left, stayed_a_while, stayed):
        deliver(subscription, start=at(2026, 11, 10, 8), end=at(2026, 11, 11, 8))
    deliver(stayed_a_while, start=at(2026, 11, 11, 8), end=at(2026, 11, 12, 8))  # got another digest
    Subscription.objects.filter(pk__in=[left.pk, stayed_a_while.pk]).update(
        status=SubscriptionStatus.UNSUBSCRIBED, unsubscribed_at=at(2026, 11, 13, 9)
    )
    assert issue_report(issue=issue).unsubscribed_after == 1


def test_bounces_and_complaints_about_its_digests_are_counted(client):
    newsletter = NewsletterFactory()
    issue = IssueFactory(newsletter=newsletter, publish_at=at(2026, 11, 10, 12))
    a, b = SubscriptionFactory.create_batch(2, newsletter=newsletter)
    carried_a = deliver(a, start=at(2026, 11, 10, 8), end=at(2026, 11, 11, 8))
    carried_b = deliver(b, start=at(2026, 11, 10, 8), end=at(2026, 11, 11, 8))
    later = deliver(a, start=at(2026, 11, 11, 8), end=at(2026, 11, 12, 8))  # did not carry it
    events = [
        (carried_a, BounceKind.SOFT),
        (carried_a, BounceKind.HARD),
        (carried_b, BounceKind.COMPLAINT),
        (later, BounceKind.HARD),
    ]
    for n, (delivery, kind) in enumerate(events):
        BounceEvent.objects.create(
            subscriber=delivery.subscription.subscriber,
            delivery=delivery,
            kind=kind,
            action=BounceAction.COUNTED,
            source="test",
            occurred_at=at(2026, 11, 11, 9),
            fingerprint=f"event-{n}",
        )
    report = issue_report(issue=issue)
    assert (report.digests, report.bounces, report.complaints) == (2, 2, 1)


def test_who_gets_it_and_when(settings):
    settings.TIME_ZONE = "UTC"
    settings.DIGEST_CRON_SCHEDULE = "*/5 * * * *"
    newsletter = NewsletterFactory(send_time=datetime.time(8, 0), weekly_day=0)  # Mondays 08:00 local
    publish_at = at(2026, 11, 20, 10, 2)  # a Friday
    issue = IssueFactory(newsletter=newsletter, status=IssueStatus.PUBLISHED, publish_at=publish_at)
    for tz in ["Europe/Paris", "America/New_York", "America/New_York"]:
        SubscriptionFactory(newsletter=newsletter, frequency=Frequency.DAILY, subscriber=SubscriberFactory(timezone=tz))
    SubscriptionFactory(newsletter=newsletter, frequency=Frequency.WEEKLY, subscriber=SubscriberFactory(timezone="UTC"))
    SubscriptionFactory.create_batch(2, newsletter=newsletter, frequency=Frequency.IMMEDIATE)
    SubscriptionFactory(newsletter=newsletter, frequency=Frequency.DAILY, status=SubscriptionStatus.PAUSED)
    when, plans = issue_audience(issue=issue, now=at(2026, 11, 19))
    assert when == publish_at
    plans = {plan.frequency: plan for plan in plans}
    # Immediate: the first run after it settles (60 s): 10:05.
    assert plans["immediate"].readers == 2 and plans["immediate"].first == at(2026, 11, 20, 10, 5)
    # Daily: New York's 08:00 has not come yet on Friday (13:00 UTC); Paris's has, so Saturday (07:00 UTC).
    daily = plans["daily"]
    assert daily.readers == 3
    assert daily.first == at(2026, 11, 20, 13, 5) and daily.last == at(2026, 11, 21, 7, 5)
    assert daily.days == [(datetime.date(2026, 11, 20), 2), (datetime.date(2026, 11, 21), 1)]
    assert plans["weekly"].days == [(datetime.date(2026, 11, 23), 1)]
    assert next_run_after(at(2026, 11, 20, 10, 3, 30)) == at(2026, 11, 20, 10, 5)


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_report_page_before_and_after_publishing(client, editor):
    newsletter = NewsletterFactory()
    SubscriptionFactory(newsletter=newsletter, frequency=Frequency.DAILY)
    draft = IssueFactory(newsletter=newsletter, status=IssueStatus.DRAFT, publish_at=None)
    page = client.get(reverse("admin:newsletters_issue_report", args=[draft.pk])).content.decode()
    assert "Who gets this and when" in page and "<strong>1</strong> reader get it" in page
    published = IssueFactory(newsletter=newsletter, publish_at=timezone.now() - datetime.timedelta(days=2))
    deliver(
        Subscription.objects.get(),
        start=published.publish_at - datetime.timedelta(hours=1),
        end=published.publish_at + datetime.timedelta(hours=1),
    )
    page = client.get(reverse("admin:newsletters_issue_report", args=[published.pk])).content.decode()
    assert "<strong>1</strong>digests carried it" in page
    change = client.get(reverse("admin:newsletters_issue_change", args=[published.pk])).content.decode()
    assert reverse("admin:newsletters_issue_report", args=[published.pk]) in change


def test_report_needs_the_right_to_see_deliveries(client):
    issue = IssueFactory()
    url = reverse("admin:newsletters_issue_report", args=[issue.pk])
    user = get_user_model().objects.create_user("newbie", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(url).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client.force_login(get_user_model().objects.get(pk=user.pk))
    assert client.get(url).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(get_user_model().objects.get(pk=user.pk))
    assert client.get(url).status_code == 200
