"""Onboarding sequences and re-confirmation, through whole runs against a real SMTP server."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from digest.models import DeliveryStatus, Letter, LetterKind
from newsletters.models import OnboardingStep, Subscriber, Subscription, SubscriptionStatus
from newsletters.tokens import keep_url
from tests.digest.conftest import at, body

pytestmark = pytest.mark.django_db

JOINED = at(2026, 6, 1, 9, 0)
DAY = datetime.timedelta(days=1)


def subjects(world, email: str) -> list[str]:
    return [message["Subject"] for message in world.inbox(email) if not message["Subject"].startswith("Issue ")]


def join(world, email: str, *, when=JOINED):
    subscription = world.subscribe(email, since=when)
    Subscription.objects.filter(pk=subscription.pk).update(joined_at=when)
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(last_link_at=when, confirmed_at=when)
    return subscription


@pytest.fixture
def sequence(world):
    """Welcome at once, an issue sent back after two days, a tip after a week."""
    old = world.publish("The basics", at(2026, 5, 1))
    long_ago = at(2026, 1, 1)
    for position, fields in enumerate(
        [
            {"body": "Glad you're here."},
            {"issue": old, "delay_days": 2},
            {"body": "A tip: *reply* to any digest.", "subject": "One week in", "delay_days": 7},
        ],
        start=1,
    ):
        OnboardingStep.objects.create(newsletter=world.newsletter, position=position, created_at=long_ago, **fields)
    return old


def test_a_sequence_goes_out_step_by_step_each_once(world, sequence):
    join(world, "ada@example.com")
    for hours in (0.1, 1, 24, 47):
        world.run(JOINED + datetime.timedelta(hours=hours))
    assert subjects(world, "ada@example.com") == ["Welcome to Weekly Notes"]
    world.run(JOINED + 2 * DAY)
    world.run(JOINED + 2 * DAY + datetime.timedelta(minutes=5))
    assert subjects(world, "ada@example.com") == ["Welcome to Weekly Notes", "The basics"]
    sent_back = world.inbox("ada@example.com")[-1]
    assert "/n/weekly/" in body(sent_back, "plain") and "Hello Ada" in body(sent_back, "plain")
    summary = world.run(JOINED + 7 * DAY)
    assert summary.letters_sent == 1
    last = world.inbox("ada@example.com")[-1]
    assert last["Subject"] == "One week in" and "<em>reply</em>" in body(last, "html")
    # Every letter carries the list headers of every reader mail.
    assert last["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and last["List-Id"]
    assert Letter.objects.filter(status=DeliveryStatus.SENT).count() == 3


def test_unsubscribing_stops_the_sequence(world, sequence):
    subscription = join(world, "bob@example.com")
    world.run(JOINED + datetime.timedelta(minutes=5))
    Subscription.objects.filter(pk=subscription.pk).update(status=SubscriptionStatus.UNSUBSCRIBED)
    world.run(JOINED + 8 * DAY)
    assert subjects(world, "bob@example.com") == ["Welcome to Weekly Notes"]


def test_a_step_added_later_never_mails_readers_who_joined_long_ago(world):
    join(world, "cy@example.com", when=at(2026, 3, 1))
    OnboardingStep.objects.create(newsletter=world.newsletter, position=1, body="Hi!", created_at=at(2026, 6, 1))
    join(world, "dee@example.com", when=at(2026, 6, 2))
    world.run(at(2026, 6, 2, 0, 5))
    assert subjects(world, "cy@example.com") == []
    assert subjects(world, "dee@example.com") == ["Welcome to Weekly Notes"]


def test_a_quiet_reader_is_asked_and_keeping_it_answers(world, settings, client):
    settings.DIGEST_RECONFIRM_MONTHS = 6
    settings.DIGEST_RECONFIRM_DAYS = 14
    ada = join(world, "ada@example.com")
    world.run(JOINED + 170 * DAY)
    assert subjects(world, "ada@example.com") == []  # quiet, but not for six months yet
    asked_at = JOINED + 181 * DAY
    assert world.run(asked_at).letters_sent == 1
    world.run(asked_at + DAY)  # asked once per quiet spell
    (question,) = [m for m in world.inbox("ada@example.com") if m["Subject"] == "Still want Weekly Notes?"]
    link = next(word for word in body(question, "plain").split() if "/keep/" in word)
    path = "/keep/" + link.split("/keep/")[1]
    assert link.split("/keep/")[0] == keep_url(ada.pk).split("/keep/")[0]
    page = client.get(path)  # a mail scanner following the link changes nothing
    assert page.status_code == 200 and b"Yes, keep it coming" in page.content
    assert Subscriber.objects.get().last_link_at == JOINED
    page = client.post(path)
    assert b"keeps coming" in page.content
    world.run(asked_at + 20 * DAY)
    assert Subscription.objects.get().status == SubscriptionStatus.ACTIVE


def test_no_answer_pauses_the_subscription_and_resuming_answers(world, settings, client, admin_client):
    settings.DIGEST_RECONFIRM_MONTHS = 6
    settings.DIGEST_RECONFIRM_DAYS = 14
    bob = join(world, "bob@example.com")
    asked_at = JOINED + 181 * DAY
    world.run(asked_at)
    world.run(asked_at + 13 * DAY)
    assert Subscription.objects.get().status == SubscriptionStatus.ACTIVE
    world.run(asked_at + 14 * DAY + datetime.timedelta(minutes=5))
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.paused_quiet) == (SubscriptionStatus.PAUSED, True)
    world.publish("Issue after the pause", asked_at + 15 * DAY)
    world.run(asked_at + 17 * DAY)
    assert "Issue after the pause" not in subjects(world, "bob@example.com")
    assert not [m for m in world.inbox("bob@example.com") if m["Subject"] == "Issue after the pause"]
    Letter.objects.update(sent_at=timezone.now())  # the card counts the last 30 days of the real clock
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert "<strong>1</strong> asked, <strong>0</strong> kept it, <strong>1</strong> paused for no answer" in page
    # The keep-me link still works after the pause: the newsletter resumes from now.
    client.post(reverse("newsletters:keep", args=[keep_url(bob.pk).rstrip("/").rsplit("/", 1)[-1]]))
    assert Subscription.objects.get().status == SubscriptionStatus.ACTIVE
    assert Letter.objects.filter(kind=LetterKind.RECONFIRM).count() == 1
