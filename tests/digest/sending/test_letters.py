"""The letters' ledger: planned once, sent once by the run, retried, skipped, held, recovered from a dead sender."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from digest.conf import digest_settings
from digest.models import DeliveryStatus, JournalEntry, Letter, LetterKind
from digest.rendering.letters import LETTER_TYPES, LetterType
from digest.sending.letters import letters_claim
from newsletters.messages import ReaderEmail
from newsletters.models import SubscriptionStatus
from tests.digest.conftest import at

pytestmark = pytest.mark.django_db

NOW = at(2026, 6, 2, 8, 5)


def note_render(letter: Letter, *, now: datetime.datetime) -> ReaderEmail:
    subscriber = letter.subscription.subscriber
    return ReaderEmail(subject=f"Note {letter.step}", body=f"Hello {subscriber.name}", to=[subscriber.email])


@pytest.fixture
def notes(monkeypatch):
    """Letters of kind "invitation" rendered as a short note (the kind whose renderer another module supplies)."""
    monkeypatch.setitem(LETTER_TYPES, LetterKind.INVITATION, LetterType(render=note_render))


def letter_to(subscription, *, step=0, due=NOW) -> Letter:
    return Letter.objects.create(kind=LetterKind.INVITATION, subscription=subscription, step=step, due_at=due)


def test_a_due_letter_goes_out_once_with_a_stable_message_id(world, notes):
    ada = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    letter_to(ada)
    letter_to(ada, step=1, due=NOW + datetime.timedelta(hours=1))
    summary = world.run(NOW)
    assert summary.letters_sent == 1 and "letters: 1 sent" in str(summary)
    (message,) = world.inbox("ada@example.com")
    assert message["Subject"] == "Note 0"
    sent = Letter.objects.get(step=0)
    assert (sent.status, sent.attempts, sent.sent_at) == (DeliveryStatus.SENT, 1, NOW)
    assert message["Message-ID"] == sent.message_id and sent.message_id.startswith("<letter.")
    world.run(NOW + datetime.timedelta(minutes=5))  # the sent one never again; the other not yet due
    assert len(world.inbox("ada@example.com")) == 1
    world.run(NOW + datetime.timedelta(hours=1))
    assert [m["Subject"] for m in world.inbox("ada@example.com")] == ["Note 0", "Note 1"]


def test_a_letter_is_planned_once_per_subscription_kind_and_step(world):
    ada = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    letter_to(ada)
    with pytest.raises(IntegrityError), transaction.atomic():
        letter_to(ada)


def test_a_refused_letter_is_retried_with_the_same_message_id_then_given_up(world, notes, settings):
    settings.DIGEST_MAX_ATTEMPTS = 2
    settings.DIGEST_RETRY_BACKOFF = 60
    ada = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    bob = world.subscribe("bob@example.com", since=at(2026, 6, 1))
    letter_to(ada)
    letter_to(bob)
    world.smtp.handler.replies["ada@example.com"] = "451 4.3.0 Try again later"
    world.smtp.handler.replies["bob@example.com"] = "550 5.1.1 No such user"
    summary = world.run(NOW)
    assert (summary.letters_deferred, summary.letters_failed) == (1, 1)
    deferred = Letter.objects.get(subscription=ada)
    assert deferred.due_at == NOW + datetime.timedelta(seconds=60)
    assert world.run(NOW + datetime.timedelta(seconds=30)).letters_deferred == 0  # not due yet
    del world.smtp.handler.replies["ada@example.com"]
    assert world.run(NOW + datetime.timedelta(seconds=60)).letters_sent == 1
    (message,) = world.inbox("ada@example.com")
    assert message["Message-ID"] == deferred.message_id
    assert Letter.objects.get(subscription=bob).status == DeliveryStatus.FAILED
    assert "550" in Letter.objects.get(subscription=bob).last_error


def test_a_letter_to_a_reader_who_left_is_skipped(world, notes):
    ada = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    letter_to(ada)
    ada.status = SubscriptionStatus.UNSUBSCRIBED
    ada.save()
    assert world.run(NOW).letters_skipped == 1
    assert world.inbox("ada@example.com") == []
    assert Letter.objects.get().last_error == "the subscription is unsubscribed"


def test_a_kind_without_a_renderer_is_held_not_lost(world, monkeypatch):
    monkeypatch.delitem(LETTER_TYPES, LetterKind.INVITATION)  # as if its renderer were not deployed yet
    ada = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    letter_to(ada)
    summary = world.run(NOW)
    assert summary.letters_held == 1
    letter = Letter.objects.get()
    assert (letter.status, letter.attempts) == (DeliveryStatus.DEFERRED, 0)
    assert "no renderer" in letter.last_error and letter.due_at > NOW


def test_a_dead_senders_letters_are_recovered_from_its_journal_and_only_the_rest_resent(world, notes):
    readers = [world.subscribe(f"r{n}@example.com", since=at(2026, 6, 1)) for n in range(3)]
    for subscription in readers:
        letter_to(subscription)
    # A sender claims all three, the relay accepts the first (journalled), then it dies.
    claimed = letters_claim(now=NOW, claimant="dead/letters", limit=10)
    assert len(claimed) == 3
    JournalEntry.objects.create(claimant="dead/letters", delivery_id=claimed[0].pk)
    lease = datetime.timedelta(seconds=digest_settings.CLAIM_TIMEOUT + 1)
    Letter.objects.update(claimed_at=F("claimed_at") - lease)
    summary = world.run(NOW + datetime.timedelta(minutes=1))
    assert summary.letters_sent == 3  # one recorded from the journal, two sent now
    assert world.inbox(claimed[0].subscription.subscriber.email) == []
    for letter in claimed[1:]:
        (message,) = world.inbox(letter.subscription.subscriber.email)
        assert message["Message-ID"] == letter.message_id
    assert set(Letter.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert not JournalEntry.objects.exists()


def test_a_live_letter_senders_journal_survives_a_digest_senders_recovery(world, notes):
    ada = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    letter_to(ada)
    (letter,) = letters_claim(now=NOW, claimant="alive/letters", limit=10)
    JournalEntry.objects.create(claimant="alive/letters", delivery_id=letter.pk)
    world.run(NOW)  # its digests' recovery prunes marks of claimants with nothing in flight
    assert JournalEntry.objects.filter(claimant="alive/letters").exists()
