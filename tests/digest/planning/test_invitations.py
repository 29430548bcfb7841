"""An admin import in "invite" mode: one invitation per new address, sent once by the run, and its link confirms."""

import datetime
import re
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model

from digest.models import DeliveryStatus, Letter, LetterKind
from newsletters.models import ImportMode, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.subscriber_imports import subscriber_import_preview, subscriber_import_run, subscriber_import_start
from tests.digest.conftest import at, body
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

NOW = at(2026, 6, 2, 8, 5)
CSV = (
    "email,name,timezone,frequency\n"
    "new1@example.com,New One,Europe/Paris,daily\n"
    "new2@example.com,,,\n"
    "active@example.com,Active,,\n"
    "elsewhere@example.com,Elsewhere,,\n"
    "gone@example.com,,,\n"
)


def import_run(newsletter, text: str = CSV) -> dict:
    user = get_user_model().objects.get_or_create(username="owner", defaults={"is_staff": True})[0]
    record, _, _ = subscriber_import_preview(newsletter=newsletter, file_name="list.csv", text=text, user=user, now=NOW)
    subscriber_import_start(record=record, mode=ImportMode.INVITE, user=user, now=NOW)
    return subscriber_import_run(import_id=record.pk, now=NOW)


@pytest.fixture
def readers(world):
    """An active reader of the newsletter, one active elsewhere only, one who unsubscribed from everything."""
    world.newsletter.postal_address = "Weekly Notes, 1 Quay Street, Dublin"
    world.newsletter.save()
    world.subscribe("active@example.com", since=at(2026, 6, 1))
    SubscriptionFactory(newsletter=NewsletterFactory(slug="ops"), subscriber__email="elsewhere@example.com")
    SubscriberFactory(email="gone@example.com", status=SubscriberStatus.UNSUBSCRIBED)


def test_each_new_address_gets_one_invitation_and_nobody_else_any(world, readers):
    counts = import_run(world.newsletter)
    assert counts["invitations"] == 2
    summary = world.run(NOW)
    assert summary.letters_sent == 2
    assert sorted(r for received in world.smtp.received for r in received.recipients) == [
        "new1@example.com",
        "new2@example.com",
    ]
    (message,) = world.inbox("new1@example.com")
    assert message["Subject"] == "Would you like to receive Weekly Notes?"
    assert message["List-Id"].startswith("Weekly Notes <") and message["List-Unsubscribe-Post"]
    assert message["Message-ID"] == Letter.objects.get(subscription__subscriber__email="new1@example.com").message_id
    text = body(message, "plain")
    assert "Hello New One," in text and "1 Quay Street" in text and "(daily)" in text

    # A second run sends nothing more, and the same file imported again invites nobody twice.
    assert world.run(NOW + datetime.timedelta(minutes=5)).letters_sent == 0
    assert import_run(world.newsletter)["invitations"] == 0
    assert world.run(NOW + datetime.timedelta(minutes=10)).letters_sent == 0
    assert len(world.smtp.received) == 2
    assert set(Letter.objects.values_list("kind", "status")) == {(LetterKind.INVITATION, DeliveryStatus.SENT)}


def test_following_the_invitation_activates_the_subscription(world, readers, client):
    import_run(world.newsletter)
    world.run(NOW)
    (message,) = world.inbox("new1@example.com")
    link = re.search(r"(http\S+/confirm/\S+/)", body(message, "plain")).group(1)
    path = urlparse(link).path
    assert client.get(path).status_code == 200  # a page with a button: link scanners only GET
    assert client.post(path).status_code == 302
    subscription = Subscription.objects.get(subscriber__email="new1@example.com")
    assert (subscription.status, subscription.frequency) == (SubscriptionStatus.ACTIVE, "daily")
    assert subscription.subscriber.status == SubscriberStatus.ACTIVE
    assert subscription.subscriber.timezone == "Europe/Paris"
    assert Subscription.objects.get(subscriber__email="new2@example.com").status == SubscriptionStatus.PENDING


def test_an_invitation_to_a_reader_who_confirmed_meanwhile_is_not_sent(world, readers):
    import_run(world.newsletter)
    Subscription.objects.filter(subscriber__email="new2@example.com").update(status=SubscriptionStatus.UNSUBSCRIBED)
    summary = world.run(NOW)
    assert (summary.letters_sent, summary.letters_skipped) == (1, 1)
    assert world.inbox("new2@example.com") == []
