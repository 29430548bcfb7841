"""Newsletters, bounce events and the dashboard's figures, read through the API."""

import datetime

from django.utils import timezone

from digest.models import BounceAction, BounceEvent, BounceKind, Delivery, DeliveryStatus
from newsletters.conf import site_url
from tests.api.conftest import assert_problem
from tests.factories import IssueFactory, NewsletterFactory, SubscriptionFactory


def test_newsletters_list_and_read(api):
    weekly = NewsletterFactory(name="Weekly", slug="weekly")
    NewsletterFactory(active=False)
    items = api.call("get", "/newsletters", {"active": "true"}).json()["items"]
    assert [item["slug"] for item in items] == ["weekly"]
    body = api.call("get", f"/newsletters/{weekly.pk}").json()
    assert body["name"] == "Weekly" and body["url"] == site_url(weekly.get_absolute_url())
    assert_problem(api.call("get", "/newsletters/9999"), 404)


def _bounce(subscription, kind, *, at, n, delivery=None):
    return BounceEvent.objects.create(
        subscriber=subscription.subscriber,
        delivery=delivery,
        kind=kind,
        action=BounceAction.COUNTED,
        source="test",
        occurred_at=at,
        status="5.1.1",
        diagnostic="no such user",
        fingerprint=f"f{n}",
        raw="Received: the whole returned message",
    )


def test_bounce_events_filter_by_subscriber_kind_and_time(api):
    a, b = SubscriptionFactory(), SubscriptionFactory()
    now = timezone.now()
    hard = _bounce(a, BounceKind.HARD, at=now - datetime.timedelta(days=3), n=1)
    complaint = _bounce(a, BounceKind.COMPLAINT, at=now, n=2)
    other = _bounce(b, BounceKind.SOFT, at=now, n=3)

    def ids(**query):
        return [item["id"] for item in api.call("get", "/bounces", query).json()["items"]]

    assert ids() == [hard.pk, complaint.pk, other.pk]
    assert ids(subscriber=a.subscriber_id) == [hard.pk, complaint.pk]
    assert ids(kind="complaint") == [complaint.pk]
    assert ids(occurred_after=(now - datetime.timedelta(days=1)).isoformat()) == [complaint.pk, other.pk]
    item = api.call("get", "/bounces", {"kind": "hard"}).json()["items"][0]
    assert item["status"] == "5.1.1" and "raw" not in item


def test_issue_stats_are_the_issue_reports_figures(api):
    issue = IssueFactory(publish_at=timezone.now() - datetime.timedelta(hours=3))
    subscriptions = [SubscriptionFactory(newsletter=issue.newsletter) for _ in range(3)]
    deliveries = [
        Delivery.objects.create(
            subscription=subscription,
            newsletter=issue.newsletter,
            window_start=issue.publish_at - datetime.timedelta(days=1),
            window_end=issue.publish_at + datetime.timedelta(hours=1),
            status=status,
        )
        for subscription, status in zip(
            subscriptions, [DeliveryStatus.SENT, DeliveryStatus.SENT, DeliveryStatus.FAILED], strict=True
        )
    ]
    _bounce(subscriptions[0], BounceKind.HARD, at=timezone.now(), n=1, delivery=deliveries[0])
    body = api.call("get", f"/stats/issues/{issue.pk}").json()
    assert body["digests"] == 3 and body["by_outcome"]["sent"] == 2 and body["by_outcome"]["failed"] == 1
    assert (body["bounces"], body["complaints"]) == (1, 0)
    draft = IssueFactory(status="draft", publish_at=None)
    assert api.call("get", f"/stats/issues/{draft.pk}").json()["digests"] == 0


def test_daily_stats_count_todays_readers(api):
    SubscriptionFactory()
    SubscriptionFactory()
    body = api.call("get", "/stats/days", {"days": 7}).json()
    assert body["by_week"] is False and len(body["buckets"]) == 7
    today = body["buckets"][-1]
    assert today["start"] == timezone.localdate().isoformat()
    assert today["readers"]["subscribed"] == 2 and set(today["digests"]) >= {"sent", "failed"}
    assert api.call("get", "/stats/days", {"days": 365}).json()["by_week"] is True
    assert_problem(api.call("get", "/stats/days", {"days": 0}), 422)
