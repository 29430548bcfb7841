"""After unsubscribing: undo for 30 days with a signed link, and the other newsletters one click away."""

import datetime
import re

import pytest
from django.core import signing
from django.utils import timezone

from newsletters.models import Frequency, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.tokens import preferences_url, undo_url, unsubscribe_url
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "http://testserver"


def path(url: str) -> str:
    return url.removeprefix("http://testserver")


def unsubscribe_from_page(client, subscription) -> str:
    url = path(unsubscribe_url(subscription.pk))
    return client.post(url, {"List-Unsubscribe": "One-Click", "from": "page"}).content.decode()


def test_the_unsubscribed_page_undoes_it_from_now_on(client):
    subscription = SubscriptionFactory(frequency=Frequency.DAILY, cursor=timezone.now() - datetime.timedelta(days=9))
    page = unsubscribe_from_page(client, subscription)
    assert "Undo: subscribe me again" in page and "30 days" in page
    undo = re.search(r'action="http://testserver(/undo/[^"]+/)"', page).group(1)
    assert "Subscribe again?" in client.get(undo).content.decode()  # a GET (a link scanner) changes nothing
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED
    before = timezone.now()
    assert "Welcome back" in client.post(undo).content.decode()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.frequency == Frequency.DAILY
    assert subscription.cursor >= before  # nothing published while away comes in a flood
    assert "Nothing to undo" in client.post(undo).content.decode()


def test_undo_after_everything_brings_back_only_what_that_click_stopped(client):
    reader = SubscriberFactory()
    kept = SubscriptionFactory(subscriber=reader)
    earlier = SubscriptionFactory(subscriber=reader, status=SubscriptionStatus.UNSUBSCRIBED)
    page = client.post(path(preferences_url(reader.pk)), {"unsubscribe_all": "1"}).content.decode()
    undo = re.search(r'action="http://testserver(/undo/[^"]+/)"', page).group(1)
    client.post(undo)
    reader.refresh_from_db()
    assert reader.status == SubscriberStatus.ACTIVE
    assert Subscription.objects.get(pk=kept.pk).status == SubscriptionStatus.ACTIVE
    assert Subscription.objects.get(pk=earlier.pk).status == SubscriptionStatus.UNSUBSCRIBED


def test_undo_links_expire_after_thirty_days_and_refuse_forgeries(client, monkeypatch):
    subscription = SubscriptionFactory(status=SubscriptionStatus.UNSUBSCRIBED)
    url = path(undo_url(subscription.subscriber_id, [subscription.pk]))
    later = datetime.datetime.now().timestamp() + 31 * 86400
    monkeypatch.setattr(signing.time, "time", lambda: later)
    answer = client.post(url)
    assert answer.status_code == 410 and "Undo links work for 30 days" in answer.content.decode()
    monkeypatch.undo()
    assert client.post(url[:-3] + "xx/").status_code == 400
    unsubscribe_token = path(unsubscribe_url(subscription.pk)).split("/")[2]
    assert client.post(f"/undo/{unsubscribe_token}/").status_code == 400  # another purpose's token
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED


def test_a_suppressed_reader_is_not_brought_back_by_undo(client):
    subscription = SubscriptionFactory(
        status=SubscriptionStatus.UNSUBSCRIBED, subscriber=SubscriberFactory(status=SubscriberStatus.SUPPRESSED)
    )
    page = client.post(path(undo_url(subscription.subscriber_id, [subscription.pk]))).content.decode()
    assert "bounced" in page
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED


def test_the_unsubscribed_page_offers_the_other_newsletters_one_click_each(client, smtp_server):
    subscription = SubscriptionFactory(newsletter=NewsletterFactory(name="Left"))
    got = SubscriptionFactory(subscriber=subscription.subscriber, newsletter=NewsletterFactory(name="Kept"))
    other = NewsletterFactory(name="Ops Notes", description="For operators.")
    NewsletterFactory(name="Closed", active=False)
    page = unsubscribe_from_page(client, subscription)
    offered = re.findall(r"<strong>([^<]+)</strong>", page.split("Our other newsletters")[1])
    assert offered == ["Ops Notes"]
    join = re.search(r'action="(/p/[^"]+/join/)"', page).group(1)
    assert "<h1>Subscribed</h1>" in client.post(join, {"newsletter": other.pk}).content.decode()
    joined = Subscription.objects.get(subscriber=subscription.subscriber, newsletter=other)
    assert (joined.status, joined.frequency) == (SubscriptionStatus.ACTIVE, Frequency.WEEKLY)
    assert "Already subscribed" in client.post(join, {"newsletter": got.newsletter_id}).content.decode()
    assert client.post(join, {"newsletter": "1 OR 1"}).status_code == 400
    assert client.get(join).status_code == 405
    assert smtp_server.received == []  # the signed link proves the address: no confirmation mail
