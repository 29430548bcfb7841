"""A reader's own data in the engine: their digests and returned mail in the download; erasing removes what quotes them."""

import json

import pytest
from django.core.cache import cache

from digest.models import BounceEvent, BounceKind, Delivery, DeliveryStatus
from newsletters.models import Subscriber
from newsletters.tokens import preferences_url
from tests.digest.returns.mail import sent_delivery
from tests.newsletters.test_privacy import erase_link

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    cache.clear()
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def delivery():
    """A digest sent to ada@example.org, then refused by her server, and one that failed quoting her address."""
    delivery = sent_delivery("ada@example.org")
    BounceEvent.objects.create(
        subscriber=delivery.subscription.subscriber,
        delivery=delivery,
        kind=BounceKind.HARD,
        action="suppressed",
        source="imap",
        occurred_at=delivery.window_end,
        status="5.1.1",
        diagnostic="550 5.1.1 <ada@example.org>: Recipient address rejected",
        fingerprint="f1",
        raw="Final-Recipient: rfc822; ada@example.org",
    )
    Delivery.objects.filter(pk=delivery.pk).update(last_error="550 <ada@example.org> unknown")
    return delivery


def prefs(subscriber) -> str:
    return preferences_url(subscriber.pk).removeprefix("http://testserver")


def test_the_download_lists_the_readers_digests_and_returned_mail(client, delivery):
    subscriber = delivery.subscription.subscriber
    data = json.loads(client.get(f"{prefs(subscriber)}data.json").content)
    [digest] = data["digests"]
    assert digest["status"] == DeliveryStatus.SENT and digest["message_id"] == delivery.message_id
    assert data["returned_mail"] == [
        {"kind": "hard", "at": data["returned_mail"][0]["at"], "status": "5.1.1", "action": "suppressed"}
    ]


def test_erasing_removes_what_quotes_the_reader_and_keeps_the_ledger(client, delivery, smtp_server):
    subscriber = delivery.subscription.subscriber
    client.post(f"{prefs(subscriber)}delete/")
    assert "Deleted" in client.post(erase_link(smtp_server)).content.decode()
    event = BounceEvent.objects.get()
    assert (event.raw, event.diagnostic) == ("", "")
    kept = Delivery.objects.get(pk=delivery.pk)
    assert kept.last_error == "" and kept.status == DeliveryStatus.SENT and kept.message_id == delivery.message_id
    held = json.dumps(
        [list(Subscriber.objects.values()), list(BounceEvent.objects.values()), list(Delivery.objects.values())],
        default=str,
    )
    assert "ada@example.org" not in held
