"""Readers' own data: download it all as JSON, delete themselves with a mailed, expiring, signed link."""

import datetime
import json
import re

import pytest
from django.core import signing
from django.core.cache import cache

from newsletters.models import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.privacy import address_hash
from newsletters.signals import subscriber_data_export, subscriber_erasing
from newsletters.tokens import preferences_url
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    cache.clear()
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def reader():
    reader = SubscriberFactory(email="ada@example.org", name="Ada Lovelace", timezone="Europe/London")
    SubscriptionFactory(subscriber=reader, newsletter=NewsletterFactory(name="Weekly Notes", slug="weekly"))
    SubscriptionFactory(subscriber=reader, newsletter=NewsletterFactory(name="Ops"), status="paused")
    return reader


def prefs(reader) -> str:
    return preferences_url(reader.pk).removeprefix("http://testserver")


def test_the_preferences_page_downloads_everything_held_as_json(client, reader):
    page = client.get(prefs(reader)).content.decode()
    link = re.search(r'href="(/p/[^"]+/data\.json)" download', page).group(1)
    answer = client.get(link)
    assert answer["Content-Type"] == "application/json; charset=utf-8"
    assert "attachment" in answer["Content-Disposition"] and answer["Cache-Control"] == "no-store"
    data = json.loads(answer.content)
    assert data["subscriber"]["email"] == "ada@example.org"
    assert data["subscriber"]["name"] == "Ada Lovelace" and data["subscriber"]["timezone"] == "Europe/London"
    assert [(s["newsletter"], s["status"]) for s in data["subscriptions"]] == [
        ("Ops", "paused"),
        ("Weekly Notes", "active"),
    ]
    assert client.get(link.replace("/p/", "/p/x")).status_code == 400


def test_other_apps_add_their_part_of_the_download(client, reader):
    def deliveries(sender, subscriber, **kwargs):
        return {"deliveries": [f"digest to {subscriber.email}"]}

    subscriber_data_export.connect(deliveries)
    try:
        data = json.loads(client.get(f"{prefs(reader)}data.json").content)
    finally:
        subscriber_data_export.disconnect(deliveries)
    assert data["deliveries"] == ["digest to ada@example.org"]


def erase_link(smtp_server) -> str:
    text = smtp_server.received[-1].message.get_body(("plain",)).get_content()
    return re.search(r"http://testserver(/delete/\S+/)", text).group(1)


def test_deleting_is_confirmed_by_mail_and_keeps_only_a_hashed_row(client, reader, smtp_server):
    heard = []
    subscriber_erasing.connect(receiver := lambda sender, subscriber, address_hash, **kw: heard.append(address_hash))
    try:
        page = client.post(f"{prefs(reader)}delete/").content.decode()
        assert "Check your inbox" in page
        [mail] = smtp_server.received
        assert mail.recipients == ["ada@example.org"]
        assert mail.message["Subject"] == "Confirm: delete your subscription data"
        link = erase_link(smtp_server)
        assert "ada@example.org" not in link  # the address does not travel in the URL
        assert "Delete your data?" in client.get(link).content.decode()  # a GET changes nothing
        assert Subscriber.objects.filter(email="ada@example.org").exists()
        assert "Deleted" in client.post(link).content.decode()
    finally:
        subscriber_erasing.disconnect(receiver)
    row = Subscriber.objects.get(pk=reader.pk)
    assert row.email == f"{address_hash('ada@example.org')}@erased.invalid" and heard == [
        address_hash("ada@example.org")
    ]
    assert (row.name, row.timezone, row.status) == ("", "UTC", SubscriberStatus.UNSUBSCRIBED)
    assert set(Subscription.objects.filter(subscriber=reader).values_list("status", flat=True)) == {
        SubscriptionStatus.UNSUBSCRIBED
    }
    held = json.dumps(list(Subscriber.objects.values()), default=str).lower()
    assert "lovelace" not in held and "example.org" not in held and "london" not in held
    assert client.post(link).status_code == 400  # used: the address it was bound to is gone


def test_deletion_mails_are_limited_and_the_request_alone_deletes_nothing(client, reader, smtp_server):
    for _ in range(5):
        client.post(f"{prefs(reader)}delete/")
    assert len(smtp_server.received) == 3  # at most three a day
    assert Subscriber.objects.get(pk=reader.pk).email == "ada@example.org"


def test_deletion_links_expire_and_forgeries_fail(client, reader, smtp_server, monkeypatch):
    client.post(f"{prefs(reader)}delete/")
    link = erase_link(smtp_server)
    later = datetime.datetime.now().timestamp() + 3 * 86400
    monkeypatch.setattr(signing.time, "time", lambda: later)
    expired = client.post(link)
    monkeypatch.undo()
    assert expired.status_code == 410 and "Deletion links work for 2 days" in expired.content.decode()
    assert client.post(link[:-4] + "abc/").status_code == 400
    other = SubscriberFactory()
    assert client.post(f"/delete/{prefs(other).split('/')[2]}/").status_code == 400  # a preferences token
    assert Subscriber.objects.get(pk=reader.pk).email == "ada@example.org"
