"""Subscribers and subscriptions through the API, by the rules readers and imports follow."""

import datetime

from django.utils import timezone

from api.models import Consent
from newsletters.models import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.services import subscription_confirm
from tests.api.conftest import assert_problem
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

CONSENT = {"text": "Yes, send me the weekly news.", "given_at": "2026-11-30T10:00:00+00:00", "source_ip": "203.0.113.9"}


def test_double_opt_in_mails_a_link_and_stores_nothing_until_it_is_followed(api, smtp_server):
    NewsletterFactory()  # not chosen
    newsletter = NewsletterFactory()
    payload = {
        "email": "Ann@Example.com",
        "name": "Ann",
        "timezone": "Europe/Paris",
        "subscriptions": [{"newsletter": newsletter.pk, "frequency": "daily"}],
    }
    response = api.call("post", "/subscribers", payload)
    assert response.status_code == 202
    assert not Subscriber.objects.exists()
    (mail,) = smtp_server.received
    assert mail.recipients == ["Ann@example.com"]
    link = next(line for line in mail.message.get_body(("plain",)).get_content().split() if "/confirm/" in line)
    subscription_confirm(token=link.rstrip("/").rsplit("/", 1)[-1], now=timezone.now())
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.frequency) == (SubscriptionStatus.ACTIVE, "daily")
    assert subscription.subscriber.timezone == "Europe/Paris"


def test_double_opt_in_answers_the_same_for_a_known_address(api, smtp_server):
    newsletter = NewsletterFactory()
    SubscriberFactory(email="known@example.com")
    payload = {"subscriptions": [{"newsletter": newsletter.pk}]}
    known = api.call("post", "/subscribers", {"email": "known@example.com", **payload})
    unknown = api.call("post", "/subscribers", {"email": "new@example.com", **payload})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert Subscriber.objects.count() == 1


def test_the_subscribe_forms_checks_apply(api, smtp_server):
    newsletter = NewsletterFactory()
    inactive = NewsletterFactory(active=False)
    cases = [
        ({"email": "not-an-address", "subscriptions": [{"newsletter": newsletter.pk}]}, "email"),
        (
            {"email": "a@example.com", "timezone": "Mars/Olympus", "subscriptions": [{"newsletter": newsletter.pk}]},
            "timezone",
        ),
        ({"email": "a@example.com", "name": "A\nB", "subscriptions": [{"newsletter": newsletter.pk}]}, "name"),
        ({"email": "a@example.com", "subscriptions": [{"newsletter": inactive.pk}]}, ""),
        (
            {"email": "a@example.com", "subscriptions": [{"newsletter": newsletter.pk, "frequency": "hourly"}]},
            "subscriptions.0.frequency",
        ),
    ]
    for payload, field in cases:
        body = assert_problem(api.call("post", "/subscribers", payload), 422)
        assert field in [error["field"] for error in body["errors"]], body
    assert smtp_server.received == [] and not Subscriber.objects.exists()


def test_too_many_requests_from_one_client_are_refused(api, smtp_server, settings):
    settings.NEWSLETTERS_RATE_PER_CLIENT = 2
    newsletter = NewsletterFactory()
    for n in range(2):
        payload = {
            "email": f"r{n}@example.com",
            "subscriptions": [{"newsletter": newsletter.pk}],
            "client_ip": "198.51.100.7",
        }
        assert api.call("post", "/subscribers", payload).status_code == 202
    payload["email"] = "r3@example.com"
    response = api.call("post", "/subscribers", payload)
    assert_problem(response, 429)
    assert response["Retry-After"] == "3600"
    payload["client_ip"] = "198.51.100.8"  # another reader behind the same app
    assert api.call("post", "/subscribers", payload).status_code == 202


def test_recorded_consent_subscribes_at_once_and_keeps_the_evidence(api):
    newsletter, other = NewsletterFactory(), NewsletterFactory()
    payload = {
        "email": "bo@example.com",
        "name": "Bo",
        "subscriptions": [{"newsletter": newsletter.pk, "frequency": "immediate"}],
        "confirmation": "consent_recorded",
        "consent": CONSENT,
    }
    response = api.call("post", "/subscribers", payload)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "active" and body["subscriptions"][0]["status"] == "active"
    assert body["subscriptions"][0]["frequency"] == "immediate"
    assert not Subscription.objects.filter(newsletter=other).exists()
    consent = Consent.objects.get()
    assert (consent.subscriber_id, consent.newsletters, consent.recorded_by) == (
        body["id"],
        [newsletter.slug],
        "crm-sync",
    )
    assert consent.source_ip == "203.0.113.9"


def test_recorded_consent_needs_the_evidence_and_never_resubscribes_who_left(api):
    newsletter = NewsletterFactory()
    base = {"subscriptions": [{"newsletter": newsletter.pk}], "confirmation": "consent_recorded"}
    assert_problem(api.call("post", "/subscribers", {"email": "c@example.com", **base}), 422)
    bad_ip = {**CONSENT, "source_ip": "not-an-ip"}
    assert_problem(api.call("post", "/subscribers", {"email": "c@example.com", **base, "consent": bad_ip}), 422)
    assert not Subscriber.objects.exists()
    gone = SubscriberFactory(email="gone@example.com", status=SubscriberStatus.UNSUBSCRIBED)
    assert_problem(api.call("post", "/subscribers", {"email": "gone@example.com", **base, "consent": CONSENT}), 409)
    gone.refresh_from_db()
    assert gone.status == SubscriberStatus.UNSUBSCRIBED and not gone.subscriptions.exists()
    assert not Consent.objects.exists()


def test_read_and_change_a_subscriber(api):
    subscription = SubscriptionFactory(frequency="weekly")
    subscriber = subscription.subscriber
    body = api.call("get", f"/subscribers/{subscriber.pk}").json()
    assert body["email"] == subscriber.email and body["subscriptions"][0]["id"] == subscription.pk
    response = api.call("patch", f"/subscribers/{subscriber.pk}", {"timezone": "Asia/Tokyo", "name": "New name"})
    assert response.status_code == 200 and response.json()["timezone"] == "Asia/Tokyo"
    subscriber.refresh_from_db()
    assert (subscriber.timezone, subscriber.name) == ("Asia/Tokyo", "New name")
    subscription.refresh_from_db()
    assert subscription.frequency == "weekly" and subscription.status == SubscriptionStatus.ACTIVE
    for bad in ({"timezone": "Nowhere/Else"}, {"name": "a\r\nBcc: x@example.com"}):
        assert_problem(api.call("patch", f"/subscribers/{subscriber.pk}", bad), 422)
    subscriber.refresh_from_db()
    assert (subscriber.timezone, subscriber.name) == ("Asia/Tokyo", "New name")


def test_change_frequency_pause_and_unsubscribe(api):
    subscription = SubscriptionFactory(frequency="weekly", next_due_at=timezone.now())
    response = api.call("patch", f"/subscriptions/{subscription.pk}", {"frequency": "daily"})
    assert response.json()["frequency"] == "daily"
    subscription.refresh_from_db()
    assert subscription.next_due_at is None  # rescheduled by the next run
    assert api.call("patch", f"/subscriptions/{subscription.pk}", {"status": "paused"}).json()["status"] == "paused"
    response = api.call("post", f"/subscriptions/{subscription.pk}/unsubscribe")
    assert response.json()["status"] == "unsubscribed" and response.json()["unsubscribed_at"]
    assert api.call("post", f"/subscriptions/{subscription.pk}/unsubscribe").status_code == 200  # idempotent


def test_a_pending_subscription_is_not_activated_by_the_api(api):
    subscription = SubscriptionFactory(status=SubscriptionStatus.PENDING)
    assert_problem(api.call("patch", f"/subscriptions/{subscription.pk}", {"status": "active"}), 409)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PENDING


def test_delete_erases_the_subscriber(api):
    subscription = SubscriptionFactory()
    response = api.call("delete", f"/subscribers/{subscription.subscriber_id}")
    assert response.status_code == 204
    assert not Subscriber.objects.exists() and not Subscription.objects.exists()
    assert_problem(api.call("delete", f"/subscribers/{subscription.subscriber_id}"), 404)


def test_lists_filter_by_status_newsletter_and_date(api):
    newsletter = NewsletterFactory()
    active = SubscriptionFactory(newsletter=newsletter)
    paused = SubscriptionFactory(newsletter=newsletter, status=SubscriptionStatus.PAUSED)
    SubscriptionFactory()
    Subscriber.objects.filter(pk=paused.subscriber_id).update(
        status=SubscriberStatus.SUPPRESSED, created_at=timezone.now() - datetime.timedelta(days=3)
    )

    def ids(path, **query):
        return [item["id"] for item in api.call("get", path, query).json()["items"]]

    assert ids("/subscriptions", newsletter=newsletter.pk) == [active.pk, paused.pk]
    assert ids("/subscriptions", newsletter=newsletter.pk, status="paused") == [paused.pk]
    assert ids("/subscribers", status="suppressed") == [paused.subscriber_id]
    yesterday = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert paused.subscriber_id not in ids("/subscribers", created_after=yesterday)
    assert ids("/subscribers", created_before=yesterday) == [paused.subscriber_id]
    assert ids("/subscribers", email=active.subscriber.email.upper()) == [active.subscriber_id]


def test_a_subscribers_language_is_read_given_and_changed_within_the_shipped_ones(api, smtp_server):
    newsletter = NewsletterFactory()
    payload = {"email": "eva@example.com", "language": "es", "subscriptions": [{"newsletter": newsletter.pk}]}
    assert api.call("post", "/subscribers", payload).status_code == 202
    (mail,) = smtp_server.received
    assert str(mail.message["Subject"]) == "Confirma tu suscripción"  # the confirmation in that language
    link = next(line for line in mail.message.get_body(("plain",)).get_content().split() if "/confirm/" in line)
    subscriber = subscription_confirm(token=link.rstrip("/").rsplit("/", 1)[-1], now=timezone.now())
    assert api.call("get", f"/subscribers/{subscriber.pk}").json()["language"] == "es"

    response = api.call("patch", f"/subscribers/{subscriber.pk}", {"language": "ar"})
    assert response.status_code == 200 and response.json()["language"] == "ar"
    assert_problem(api.call("patch", f"/subscribers/{subscriber.pk}", {"language": "klingon"}), 422)
    refused = {**payload, "email": "kim@example.com", "language": "xx"}
    assert_problem(api.call("post", "/subscribers", refused), 422)
    assert Subscriber.objects.get().language == "ar" and len(smtp_server.received) == 1
    consented = {**payload, "email": "lea@example.com", "language": "fr", "confirmation": "consent_recorded"}
    assert api.call("post", "/subscribers", consented | {"consent": CONSENT}).json()["language"] == "fr"
