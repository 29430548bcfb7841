"""newsletters.services, called directly: publishing and the reader flows' writes."""

import datetime

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from newsletters.exceptions import ConfirmationReplayed, RateLimited
from newsletters.models import IssueStatus, Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.services import (
    PreferenceChange,
    confirmation_used,
    issue_publish,
    preferences_update,
    subscriber_unsubscribe_all,
    subscription_confirm,
    subscription_request,
    subscription_set_frequency,
    subscription_unsubscribe,
)
from newsletters.tokens import token_make
from tests.factories import IssueFactory, NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.UTC)


def test_issue_publish_now_or_later():
    issue = IssueFactory(status=IssueStatus.DRAFT, publish_at=None)
    issue_publish(issue=issue, now=NOW)
    assert (issue.status, issue.publish_at) == (IssueStatus.PUBLISHED, NOW)
    later = NOW + datetime.timedelta(days=2)
    issue_publish(issue=issue, now=NOW, publish_at=later)
    issue.refresh_from_db()
    assert issue.publish_at == later


def test_a_request_stores_nothing_and_a_confirmation_applies_it_once():
    cache.clear()
    newsletter = NewsletterFactory()
    assert subscription_request(
        email="ann@Bücher.example", name="Ann", tz="UTC", choices={newsletter.pk: "daily"}, client="1.2.3.4", now=NOW
    )
    assert not Subscriber.objects.exists() and len(mail.outbox) == 1
    payload = {"e": "ann@bücher.example", "n": "Ann", "tz": "UTC", "c": {str(newsletter.pk): "daily"}}
    payload["iat"] = int(NOW.timestamp())
    token = token_make(purpose="confirm", value=payload)
    assert not confirmation_used(payload=payload)
    subscriber = subscription_confirm(token=token, now=NOW + datetime.timedelta(minutes=5))
    assert (subscriber.status, subscriber.subscriptions.get().status) == ("active", "active")
    assert confirmation_used(payload=payload)
    with pytest.raises(ConfirmationReplayed):
        subscription_confirm(token=token, now=NOW + datetime.timedelta(minutes=6))


def test_one_client_asking_too_often_is_rate_limited(settings):
    cache.clear()
    settings.NEWSLETTERS_RATE_PER_CLIENT = 1
    newsletter = NewsletterFactory()
    request = {"name": "", "tz": "UTC", "choices": {newsletter.pk: "weekly"}, "client": "9.9.9.9", "now": NOW}
    subscription_request(email="a@example.com", **request)
    with pytest.raises(RateLimited):
        subscription_request(email="b@example.com", **request)


def test_unsubscribe_is_idempotent_and_frequency_changes_keep_the_cursor():
    subscription = SubscriptionFactory(cursor=NOW, next_due_at=NOW)
    subscription_set_frequency(subscription=subscription, frequency="weekly", now=timezone.now())
    subscription.refresh_from_db()
    assert (subscription.frequency, subscription.cursor, subscription.next_due_at) == ("weekly", NOW, None)
    for _ in range(2):
        assert subscription_unsubscribe(subscription_id=subscription.pk, now=timezone.now())
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED
    assert not subscription_unsubscribe(subscription_id=subscription.pk + 1000, now=timezone.now())


def test_preferences_resume_from_now_and_unsubscribe_all_spares_suppression():
    subscription = SubscriptionFactory(status=SubscriptionStatus.PAUSED, cursor=NOW - datetime.timedelta(days=30))
    subscriber = subscription.subscriber
    change = PreferenceChange(subscription.pk, "daily", SubscriptionStatus.ACTIVE)
    preferences_update(subscriber=subscriber, name="New", tz="Asia/Tokyo", changes=[change], now=NOW)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.cursor, subscription.next_due_at) == ("active", NOW, None)
    Subscriber.objects.filter(pk=subscriber.pk).update(status=SubscriberStatus.SUPPRESSED)
    subscriber.refresh_from_db()
    subscriber_unsubscribe_all(subscriber=subscriber, now=timezone.now())
    subscriber.refresh_from_db()
    assert subscriber.status == SubscriberStatus.SUPPRESSED
    assert set(Subscription.objects.values_list("status", flat=True)) == {SubscriptionStatus.UNSUBSCRIBED}


def test_every_way_of_stopping_records_when(settings):
    one, two, three = SubscriptionFactory.create_batch(3)
    subscription_unsubscribe(subscription_id=one.pk, now=timezone.now())
    change = PreferenceChange(two.pk, two.frequency, SubscriptionStatus.UNSUBSCRIBED)
    preferences_update(subscriber=two.subscriber, name="", tz="UTC", changes=[change], now=NOW)
    subscriber_unsubscribe_all(subscriber=three.subscriber, now=timezone.now())
    for subscription in (one, two, three):
        subscription.refresh_from_db()
        assert subscription.status == SubscriptionStatus.UNSUBSCRIBED and subscription.unsubscribed_at is not None
    assert two.unsubscribed_at == NOW
