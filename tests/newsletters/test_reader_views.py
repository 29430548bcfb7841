"""Reader pages: subscribe, confirm, preferences, unsubscribe (RFC 8058), archive and feed, and bad input."""

import re
import time

import pytest
from django.core import mail, signing
from django.test import Client

from newsletters.models import Frequency, Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.tokens import preferences_url, token_make, unsubscribe_url
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    from django.core.cache import cache

    cache.clear()
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def weekly():
    return NewsletterFactory(name="Weekly Notes", slug="weekly")


def subscribe(client, newsletter, **overrides):
    data = {
        "email": "ada@example.com",
        "name": "Ada",
        "timezone": "Europe/Paris",
        f"nl_{newsletter.pk}": "on",
        f"freq_{newsletter.pk}": "daily",
    } | overrides
    return client.post("/subscribe/", data)


def link_in(message) -> str:
    return re.search(r"http://testserver(/confirm/[^\s]+/)", message.body).group(1)


def test_subscribe_page_has_labelled_fields(client, weekly):
    page = client.get("/subscribe/").content.decode()
    for label in ['for="id_email"', 'for="id_name"', 'for="id_timezone"', f'for="id_freq_{weekly.pk}"']:
        assert label in page
    assert "Intl.DateTimeFormat" in page  # the browser's time zone preselects the select
    assert "https://" not in page.replace("http://testserver", "")  # nothing from a CDN


def test_subscribe_sends_a_confirmation_and_stores_nothing(client, weekly):
    response = subscribe(client, weekly)
    assert response.status_code == 302 and response["Location"] == "/subscribe/sent/"
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Confirm your subscription"
    assert "Weekly Notes (daily)" in message.body
    assert message.alternatives[0].mimetype == "text/html"
    assert not Subscriber.objects.exists()


def test_the_answer_does_not_reveal_known_addresses(client, weekly):
    unknown = subscribe(client, weekly, email="new@example.com")
    existing = SubscriptionFactory(
        subscriber=SubscriberFactory(email="known@example.com"), newsletter=weekly, frequency="weekly"
    )
    known = subscribe(client, weekly, email="known@example.com", **{f"freq_{weekly.pk}": "immediate"})
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert client.get(unknown["Location"]).content == client.get(known["Location"]).content
    existing.refresh_from_db()
    assert existing.frequency == "weekly"  # the form alone never changes an existing reader


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"email": "not-an-address"}, "Enter a valid email address."),
        ({"email": "ann@xn--zz.example"}, "is not valid"),
        ({"email": "a" * 250 + "@example.com"}, "at most 254 characters"),
        ({"name": "Ada\r\nBcc: victim@example.com"}, "Line breaks are not allowed here."),
        ({"timezone": "Mars/Olympus"}, "Select a valid choice."),
        ({"freq_PK": "hourly"}, "Select a valid choice."),
        ({"nl_PK": ""}, "Choose at least one newsletter."),
        ({"nl_999999": "on"}, "does not exist"),
    ],
)
def test_bad_subscribe_input_is_refused_and_sends_nothing(client, weekly, overrides, error):
    overrides = {key.replace("PK", str(weekly.pk)): value for key, value in overrides.items()}
    response = subscribe(client, weekly, **overrides)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert mail.outbox == []


def test_rate_limits_per_address_and_per_client(client, weekly, settings):
    settings.NEWSLETTERS_RATE_PER_ADDRESS = 2
    settings.NEWSLETTERS_RATE_PER_CLIENT = 4
    answers = [subscribe(client, weekly).status_code for _ in range(3)]
    assert answers == [302, 302, 302]  # the same answer...
    assert len(mail.outbox) == 2  # ...but the third mail to that address was not sent
    assert subscribe(client, weekly, email="other@example.com").status_code == 302
    assert subscribe(client, weekly, email="third@example.com").status_code == 429
    assert len(mail.outbox) == 3


def confirm(client, link):
    assert client.get(link).status_code == 200
    return client.post(link)


def test_idn_and_punycode_forms_are_one_reader_and_share_the_rate_limit(client, weekly, settings):
    settings.NEWSLETTERS_RATE_PER_ADDRESS = 2
    for email in ("ann@xn--bcher-kva.example", "ann@Bücher.example", "ann@bücher.example"):
        assert subscribe(client, weekly, email=email).status_code == 302
    assert len(mail.outbox) == 2  # the third request counted against the same address
    for message in mail.outbox:
        client.post(link_in(message))
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ann@bücher.example"]


def test_confirm_activates_and_shows_what_and_when(client, weekly):
    subscribe(client, weekly)
    link = link_in(mail.outbox[0])
    page = client.get(link).content.decode()
    assert "ada@example.com" in page and not Subscriber.objects.exists()  # GET changes nothing
    response = client.post(link, follow=True)
    subscriber = Subscriber.objects.get()
    assert (subscriber.status, subscriber.name, subscriber.timezone) == (SubscriberStatus.ACTIVE, "Ada", "Europe/Paris")
    subscription = subscriber.subscriptions.get()
    assert (subscription.frequency, subscription.status) == ("daily", SubscriptionStatus.ACTIVE)
    body = response.content.decode()
    assert "You're subscribed" in body
    # The factory's send time is 08:00: shown in the reader's zone, not the server's.
    assert "Weekly Notes</strong>:" in body and re.search(r"daily, next on \w+ \d+ \w+, 08:00 \(Europe/Paris\)", body)


def test_replayed_confirmation_gets_410_and_changes_nothing(client, weekly):
    subscribe(client, weekly)
    link = link_in(mail.outbox[0])
    confirm(client, link)
    Subscription.objects.update(status=SubscriptionStatus.UNSUBSCRIBED)
    response = client.post(link)
    assert response.status_code == 410 and "already used" in response.content.decode()
    assert Subscription.objects.get().status == SubscriptionStatus.UNSUBSCRIBED
    # The page behind the link says so too, before anyone presses a button.
    page = client.get(link)
    assert page.status_code == 410 and "already used" in page.content.decode()


def test_expired_confirmation_gets_410(client, weekly, monkeypatch, settings):
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 8 * 86400)
    subscribe(client, weekly)
    monkeypatch.setattr(signing.time, "time", real_time)
    link = link_in(mail.outbox[0])
    assert client.get(link).status_code == 410
    response = client.post(link)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize("prefix", ["/confirm/", "/p/", "/u/"])
def test_tampered_and_foreign_tokens_get_400(client, weekly, prefix):
    subscription = SubscriptionFactory(newsletter=weekly)
    genuine = {
        "/confirm/": token_make(purpose="confirm", value={"e": "x@example.com"}),
        "/p/": token_make(purpose="preferences", value=subscription.subscriber_id),
        "/u/": token_make(purpose="unsubscribe", value=subscription.pk),
    }
    tampered = genuine[prefix][:-3] + ("AAA" if not genuine[prefix].endswith("AAA") else "BBB")
    foreign = next(token for path, token in genuine.items() if path != prefix)
    for token in (tampered, foreign, "garbage"):
        assert client.get(f"{prefix}{token}/").status_code == 400
        assert client.post(f"{prefix}{token}/", {"List-Unsubscribe": "One-Click"}).status_code in (400, 403)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_preferences_change_frequency_pause_name_and_time_zone(client, weekly):
    other = NewsletterFactory(name="Ops")
    first = SubscriptionFactory(newsletter=weekly, frequency="daily", next_due_at="2026-06-01T08:00Z")
    second = SubscriptionFactory(subscriber=first.subscriber, newsletter=other, frequency="weekly")
    url = preferences_url(first.subscriber_id).removeprefix("http://testserver")
    page = client.get(url).content.decode()
    assert first.subscriber.email in page and 'for="id_timezone"' in page
    response = client.post(
        url,
        {
            "name": "New Name",
            "timezone": "Asia/Tokyo",
            f"freq_{first.pk}": "weekly",
            f"status_{first.pk}": "active",
            f"freq_{second.pk}": "weekly",
            f"status_{second.pk}": "paused",
        },
    )
    assert response.status_code == 200 and "Saved." in response.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.frequency, first.next_due_at) == ("weekly", None)  # rescheduled by the next run
    assert second.status == SubscriptionStatus.PAUSED
    first.subscriber.refresh_from_db()
    assert (first.subscriber.name, first.subscriber.timezone) == ("New Name", "Asia/Tokyo")


def test_preferences_bad_input_changes_nothing(client, weekly):
    subscription = SubscriptionFactory(newsletter=weekly, frequency="daily")
    url = preferences_url(subscription.subscriber_id).removeprefix("http://testserver")
    response = client.post(
        url,
        {"name": "x", "timezone": "UTC", f"freq_{subscription.pk}": "hourly", f"status_{subscription.pk}": "active"},
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.frequency == "daily"


def test_unsubscribe_from_everything(client, weekly):
    subscription = SubscriptionFactory(newsletter=weekly)
    SubscriptionFactory(subscriber=subscription.subscriber)
    url = preferences_url(subscription.subscriber_id).removeprefix("http://testserver")
    response = client.post(url, {"unsubscribe_all": "1"})
    assert "Unsubscribed from everything" in response.content.decode()
    assert set(Subscription.objects.values_list("status", flat=True)) == {SubscriptionStatus.UNSUBSCRIBED}


def test_one_click_unsubscribe_rfc8058(weekly):
    subscription = SubscriptionFactory(newsletter=weekly)
    url = unsubscribe_url(subscription.pk).removeprefix("http://testserver")
    mail_client = Client(enforce_csrf_checks=True)  # no cookie, no CSRF token, as a mail client posts
    for _ in range(2):  # idempotent
        response = mail_client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200
        assert "Location" not in response
        subscription.refresh_from_db()
        assert subscription.status == SubscriptionStatus.UNSUBSCRIBED


def test_one_click_with_a_wrong_body_changes_nothing(weekly):
    subscription = SubscriptionFactory(newsletter=weekly)
    url = unsubscribe_url(subscription.pk).removeprefix("http://testserver")
    response = Client(enforce_csrf_checks=True).post(
        url, "List-Unsubscribe=Yes-Please", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_get_never_unsubscribes_and_offers_weekly(weekly):
    subscription = SubscriptionFactory(newsletter=weekly, frequency=Frequency.DAILY)
    url = unsubscribe_url(subscription.pk).removeprefix("http://testserver")
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(url).content.decode()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert "Switch to weekly instead" in page
    assert browser.post(url + "weekly/").status_code == 403  # this one keeps CSRF protection
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post(url + "weekly/", {"csrfmiddlewaretoken": token})
    assert "Weekly it is" in response.content.decode()
    subscription.refresh_from_db()
    assert (subscription.frequency, subscription.status) == (Frequency.WEEKLY, SubscriptionStatus.ACTIVE)


def test_unsubscribing_a_deleted_subscription_gets_404(client, weekly):
    subscription = SubscriptionFactory(newsletter=weekly)
    url = unsubscribe_url(subscription.pk).removeprefix("http://testserver")
    subscription.delete()
    assert client.get(url).status_code == 404
    one_click = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert one_click.status_code == 404


def test_atom_feed_lists_only_published_issues(client, weekly):
    import datetime

    from django.utils import timezone

    IssueFactory(newsletter=weekly, title="Out now", body="**bold** <script>x()</script>")
    IssueFactory(newsletter=weekly, title="Not yet", publish_at=timezone.now() + datetime.timedelta(days=1))
    IssueFactory(newsletter=weekly, title="Draft", status="draft", publish_at=None)
    response = client.get("/n/weekly/feed/")
    assert response["Content-Type"].startswith("application/atom+xml")
    body = response.content.decode()
    assert "Out now" in body and "Not yet" not in body and "Draft" not in body
    assert "&lt;strong&gt;bold&lt;/strong&gt;" in body and "x()" not in body
    assert 'type="application/atom+xml"' in client.get("/n/weekly/").content.decode()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("List-Unsubscribe=One-Click\r\n", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=One-Click\n", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=One-Click \t", "application/x-www-form-urlencoded; charset=utf-8"),
        (
            '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
        (
            '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click \r\n\r\n--b--',
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_one_click_bodies_mail_clients_really_send(weekly, body, content_type):
    subscription = SubscriptionFactory(newsletter=weekly)
    url = unsubscribe_url(subscription.pk).removeprefix("http://testserver")
    for _ in range(2):  # idempotent, whatever the body's form
        response = Client(enforce_csrf_checks=True).post(url, body, content_type=content_type)
        assert response.status_code == 200
        subscription.refresh_from_db()
        assert subscription.status == SubscriptionStatus.UNSUBSCRIBED


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("List-Unsubscribe=One-Click", "text/plain"),
        ("List-Unsubscribe=One-Clicks", "application/x-www-form-urlencoded"),
        (
            '--b\r\nContent-Disposition: form-data; name="Other"\r\n\r\nOne-Click\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_one_click_other_bodies_and_types_change_nothing(weekly, body, content_type):
    subscription = SubscriptionFactory(newsletter=weekly)
    url = unsubscribe_url(subscription.pk).removeprefix("http://testserver")
    assert Client(enforce_csrf_checks=True).post(url, body, content_type=content_type).status_code == 400
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_quoted_and_plain_local_parts_are_one_reader_and_share_the_rate_limit(client, weekly, settings):
    """L3: one mailbox, written three ways, became three active subscribers past the per-address limit."""
    settings.NEWSLETTERS_RATE_PER_ADDRESS = 2
    for email in ('"quoted"@example.com', "quoted@example.com", '"quo\\ted"@example.com'):
        assert subscribe(client, weekly, email=email).status_code == 302
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        client.post(link_in(message))
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["quoted@example.com"]
