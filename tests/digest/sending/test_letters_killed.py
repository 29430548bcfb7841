"""A letters' sender killed with SIGKILL mid-batch: nothing lost, nothing sent twice but what was in flight."""

import collections
import datetime

import pytest
from django.db.models import F

from digest.conf import digest_settings
from digest.models import DeliveryStatus, JournalEntry, Letter
from digest.run import digest_run
from newsletters.models import OnboardingStep, Subscription
from tests.digest.conftest import World, at
from tests.digest.test_processes import RUN_AT, sender
from tests.smtp import BlockingHandler, SMTPServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_killed_letters_sender_resends_only_the_letter_in_flight(settings, tmp_path):
    handler = BlockingHandler(block_at=8)
    with SMTPServer(handler) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        world = World(smtp)
        OnboardingStep.objects.create(newsletter=world.newsletter, position=1, body="Hi!", created_at=at(2026, 1, 1))
        emails = [f"reader{n:02}@example.com" for n in range(12)]
        for email in emails:  # no issue published: the welcome letters are the only mail
            world.subscribe(email, since=at(2026, 6, 1))
        Subscription.objects.update(joined_at=RUN_AT - datetime.timedelta(minutes=1))
        process = sender(smtp, tmp_path / "dead", BATCH_SIZE=5, CONNECTIONS=1)
        assert handler.reached.wait(60), process.communicate(timeout=5)
        process.kill()  # SIGKILL mid-batch: 5 recorded, 2 accepted but unrecorded, 1 in flight
        process.wait(timeout=30)
        handler.release.set()
        assert Letter.objects.filter(status=DeliveryStatus.SENDING).count() == 5
        assert len(smtp.received) == 7

        lease = datetime.timedelta(seconds=digest_settings.CLAIM_TIMEOUT + 1)
        Letter.objects.filter(status=DeliveryStatus.SENDING).update(claimed_at=F("claimed_at") - lease)
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))

    # The letter in flight was dropped with the connection and sent once by the later run;
    # the two accepted ones were recovered from the dead sender's journal, not resent.
    per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    assert per_reader == dict.fromkeys(emails, 1)
    assert summary.letters_sent == 7  # 2 recovered from the journal, 5 sent now
    assert Letter.objects.filter(status=DeliveryStatus.SENT).count() == 12
    ids = dict(Letter.objects.values_list("subscription__subscriber__email", "message_id"))
    assert all(r.message["Message-ID"] == ids[r.recipients[0]] for r in smtp.received)
    assert not JournalEntry.objects.exists()
