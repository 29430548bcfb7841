"""Events are written where the change happens, in its transaction: a rollback leaves neither."""

import datetime
import json

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from digest.models import BounceKind, Run
from digest.returns.policy import Report, bounce_record, fingerprint_of
from hooks.models import Event, EventType
from newsletters.models import Frequency, IssueStatus, SubscriptionStatus
from newsletters.services import (
    PreferenceChange,
    issue_publish,
    preferences_update,
    subscription_confirm,
    subscription_unsubscribe,
)
from newsletters.tokens import token_make, unsubscribe_url
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.hooks.conftest import T0, endpoint_make

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hooks"


def bodies(type: str | None = None) -> list[dict]:
    events = Event.objects.order_by("id")
    return [json.loads(event.body) for event in (events.filter(type=type) if type else events)]


def test_one_click_unsubscribe_writes_one_event_for_each_endpoint_that_wants_it():
    subscription = SubscriptionFactory()
    wants = endpoint_make(url=URL, newsletter=subscription.newsletter, events=["subscription.unsubscribed"])
    endpoint_make(url=URL, newsletter=subscription.newsletter, events=["issue.published"])
    endpoint_make(url=URL, events=["subscription.unsubscribed"])  # another newsletter's
    url = unsubscribe_url(subscription.pk).removeprefix("http://testserver")
    for _ in range(2):  # the second click changes nothing, and tells nothing
        response = Client().post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200

    [event] = Event.objects.all()
    assert (event.endpoint, event.type, event.key) == (
        wants,
        "subscription.unsubscribed",
        f"subscriber:{subscription.subscriber_id}",
    )
    data = json.loads(event.body)["data"]
    assert data["subscriber"]["email"] == subscription.subscriber.email
    assert data["subscription"]["status"] == "unsubscribed"
    assert data["subscription"]["newsletter"]["slug"] == subscription.newsletter.slug


def test_a_rolled_back_change_leaves_no_event_and_no_change():
    subscription = SubscriptionFactory()
    endpoint_make(url=URL, newsletter=subscription.newsletter)
    with pytest.raises(RuntimeError), transaction.atomic():
        subscription_unsubscribe(subscription_id=subscription.pk, now=timezone.now())
        assert Event.objects.count() == 1  # written inside the transaction…
        raise RuntimeError("the request failed after the unsubscribe")
    assert not Event.objects.exists()  # …and gone with it
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_no_endpoint_no_rows():
    subscription = SubscriptionFactory()
    subscription_unsubscribe(subscription_id=subscription.pk, now=timezone.now())
    assert not Event.objects.exists()


def test_confirming_tells_subscriber_confirmed_per_newsletter():
    first, second = NewsletterFactory(), NewsletterFactory()
    endpoint_make(url=URL, newsletter=first)
    endpoint_make(url=URL, newsletter=second, events=["subscriber.confirmed"])
    payload = {"e": "ann@example.com", "n": "Ann", "tz": "Europe/Berlin", "iat": int(T0.timestamp())}
    payload["c"] = {str(first.pk): "daily", str(second.pk): "weekly"}
    subscription_confirm(token=token_make(purpose="confirm", value=payload), now=T0)

    confirmed = bodies("subscriber.confirmed")
    assert [body["data"]["subscription"]["newsletter"]["id"] for body in confirmed] == [first.pk, second.pk]
    assert confirmed[0]["data"]["subscriber"] == {
        "id": confirmed[0]["data"]["subscriber"]["id"],
        "email": "ann@example.com",
        "name": "Ann",
        "timezone": "Europe/Berlin",
        "status": "active",
        "confirmed_at": T0.isoformat(),
    }
    assert confirmed[1]["data"]["subscription"]["frequency"] == "weekly"
    assert confirmed[0]["timestamp"] == T0.isoformat()


def test_preferences_tell_changed_and_unsubscribed_and_nothing_for_no_change():
    subscriber = SubscriberFactory()
    daily, weekly, same = (SubscriptionFactory(subscriber=subscriber) for _ in range(3))
    for subscription in (daily, weekly, same):
        endpoint_make(url=URL, newsletter=subscription.newsletter)
    preferences_update(
        subscriber=subscriber,
        name=subscriber.name,
        tz=subscriber.timezone,
        changes=[
            PreferenceChange(daily.pk, Frequency.WEEKLY, SubscriptionStatus.ACTIVE),
            PreferenceChange(weekly.pk, Frequency.DAILY, SubscriptionStatus.UNSUBSCRIBED),
            PreferenceChange(same.pk, same.frequency, same.status),
        ],
        now=T0,
    )
    assert [(e.type, e.endpoint.newsletter_id) for e in Event.objects.order_by("id")] == [
        ("subscription.changed", daily.newsletter_id),
        ("subscription.unsubscribed", weekly.newsletter_id),
    ]
    assert bodies("subscription.changed")[0]["data"]["subscription"]["frequency"] == "weekly"


def test_an_issue_published_is_told_once_even_when_saved_again():
    issue = IssueFactory(status=IssueStatus.DRAFT, publish_at=None)
    endpoint = endpoint_make(url=URL, newsletter=issue.newsletter)
    assert not Event.objects.exists()  # a draft tells nothing
    issue_publish(issue=issue, now=T0)
    issue.title = "Corrected title"
    issue.save()
    [body] = bodies()
    assert body["type"] == "issue.published"
    assert body["data"]["issue"]["publish_at"] == T0.isoformat()
    assert body["data"]["issue"]["url"].endswith(f"/n/{issue.newsletter.slug}/{issue.slug}/")
    endpoint_make(url=URL, newsletter=issue.newsletter)  # added later: told at the next save
    issue.save()
    assert Event.objects.filter(type="issue.published").exclude(endpoint=endpoint).count() == 1


def test_a_hard_bounce_and_a_complaint_are_told_with_the_unsubscribes_they_cause():
    subscription = SubscriptionFactory()
    endpoint_make(url=URL, newsletter=subscription.newsletter)
    subscriber = subscription.subscriber
    for kind in (BounceKind.SOFT, BounceKind.HARD, BounceKind.COMPLAINT):
        report = Report(kind=kind, source="test", occurred_at=T0, fingerprint=fingerprint_of(kind, T0))
        bounce_record(report=report, subscriber=subscriber, now=T0)
    assert [body["type"] for body in bodies()] == ["bounce.hard", "subscription.unsubscribed", "complaint"]
    hard = bodies("bounce.hard")[0]["data"]
    assert (hard["bounce"]["kind"], hard["bounce"]["action"], hard["subscriber"]["id"]) == (
        "hard",
        "suppressed",
        subscriber.pk,
    )


def test_a_digest_run_is_told_to_its_newsletter_or_to_all():
    weekly, daily = NewsletterFactory(), NewsletterFactory()
    endpoint_make(url=URL, newsletter=weekly, events=["digest.run.finished"])
    endpoint_make(url=URL, newsletter=daily, events=["digest.run.finished"])
    now = timezone.now()
    times = {"started_at": now, "finished_at": now + datetime.timedelta(seconds=2), "now": now}
    Run.objects.create(newsletter="", summary={"sent": 3}, **times)
    Run.objects.create(newsletter=weekly.slug, summary={"sent": 1}, **times)
    assert [
        (e.endpoint.newsletter_id, json.loads(e.body)["data"]["run"]["summary"]) for e in Event.objects.order_by("id")
    ] == [
        (weekly.pk, {"sent": 3}),
        (daily.pk, {"sent": 3}),
        (weekly.pk, {"sent": 1}),
    ]
    assert {event.type for event in Event.objects.all()} == {EventType.RUN_FINISHED}
