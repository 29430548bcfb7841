"""Pacing per mailbox provider: a provider that throttles waits, the others keep going; nothing lost or doubled."""

import collections
import datetime
import smtplib
from dataclasses import dataclass

import pytest

from digest.models import Delivery, DeliveryStatus
from digest.providers import provider_of
from digest.sending.outcomes import provider_throttled, throttled
from tests.digest.conftest import World, at
from tests.smtp import RecordingHandler, SMTPServer

pytestmark = pytest.mark.django_db


@dataclass
class ThrottlingProvider(RecordingHandler):
    """A relay that passes back one provider's throttling: 421 to every third recipient at `domain`."""

    domain: str = "throttled.example"
    asked: int = 0
    refused: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@" + self.domain):
            with self.lock:
                self.asked += 1
                if self.asked % 3 == 0:
                    self.refused += 1
                    return "421 4.7.0 Try again later, closing connection."
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_throttling_provider_waits_while_the_others_go_on(settings, monkeypatch, pipelining):
    monkeypatch.setattr("digest.sending.pool.THROTTLE_WAITS", (0.01, 0.01))
    settings.DIGEST_CONNECTIONS = 4
    handler = ThrottlingProvider(pipelining=pipelining)
    with SMTPServer(handler) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        world = World(smtp)
        readers = {
            domain: [f"reader{n:02}@{domain}" for n in range(20)]
            for domain in ("gmail.com", "outlook.com", "throttled.example")
        }
        for emails in readers.values():
            for email in emails:
                world.subscribe(email, since=at(2026, 6, 1))
        world.publish("Issue a", at(2026, 6, 1, 12, 0))
        first = world.run(at(2026, 6, 2, 8, 5))
        got = collections.Counter(r.recipients[0] for r in smtp.received)
        # The two that did not throttle got everything in the first run.
        assert all(got[email] == 1 for email in readers["gmail.com"] + readers["outlook.com"])
        waiting = Delivery.objects.filter(status=DeliveryStatus.DEFERRED)
        assert first.deferred == waiting.count() > 0
        assert {d.subscription.subscriber.email.partition("@")[2] for d in waiting} == {"throttled.example"}
        errors = {d.last_error for d in waiting}
        assert any("throttled.example is throttling us (421 4.7.0" in error for error in errors), errors
        assert all("throttl" in error for error in errors), errors  # its own throttling, nothing else
        # Later runs (after each deferral's backoff) bring the rest, each reader once.
        moment = at(2026, 6, 2, 8, 5)
        for _ in range(12):
            if not Delivery.objects.exclude(status=DeliveryStatus.SENT).exists():
                break
            moment += datetime.timedelta(hours=7)  # past DIGEST_RETRY_MAX, whatever the attempt
            world.run(moment)
        per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    assert per_reader == dict.fromkeys([email for emails in readers.values() for email in emails], 1)
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 60
    assert handler.refused >= 1


@dataclass
class DownProvider(RecordingHandler):
    """A relay passing back a provider that throttles every recipient at `domain` while `down`."""

    domain: str = "throttled.example"
    down: bool = True
    refused: collections.Counter = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.down and address.endswith("@" + self.domain):
            with self.lock:
                self.refused[address] += 1
            return "421 4.7.0 Try again later, closing connection."
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def test_a_long_throttle_delays_readers_but_fails_only_those_it_refused_max_attempts_times(settings, monkeypatch):
    """A deferral of a provider that backed off was never written: it is not an attempt."""
    monkeypatch.setattr("digest.sending.pool.THROTTLE_WAITS", (0.01, 0.01))
    settings.DIGEST_CONNECTIONS = 2
    settings.DIGEST_MAX_ATTEMPTS = 3
    handler = DownProvider(refused=collections.Counter())
    with SMTPServer(handler) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        world = World(smtp)
        throttled_readers = [f"reader{n:02}@throttled.example" for n in range(20)]
        for email in [*throttled_readers, "ok@gmail.com"]:
            world.subscribe(email, since=at(2026, 6, 1))
        world.publish("Issue a", at(2026, 6, 1, 12, 0))
        moment = at(2026, 6, 2, 8, 5)
        for _ in range(5):  # down for five runs: more than DIGEST_MAX_ATTEMPTS
            world.run(moment)
            moment += datetime.timedelta(hours=7)
        unwritten = Delivery.objects.filter(status=DeliveryStatus.DEFERRED, last_error__contains="to a later run")
        assert unwritten.count() >= 10
        assert set(unwritten.values_list("attempts", flat=True)) == {0}
        handler.down = False
        for _ in range(6):
            world.run(moment)
            moment += datetime.timedelta(hours=7)
        per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    failed = set(
        Delivery.objects.filter(status=DeliveryStatus.FAILED).values_list("subscription__subscriber__email", flat=True)
    )
    # Only a reader refused (written, then throttled) as often as DIGEST_MAX_ATTEMPTS is given up on.
    assert all(handler.refused[email] >= 3 for email in failed), (failed, handler.refused)
    assert len(failed) <= 2 * settings.DIGEST_CONNECTIONS  # the provider's first messages in flight, written each run
    assert per_reader == dict.fromkeys(
        [email for email in [*throttled_readers, "ok@gmail.com"] if email not in failed], 1
    )


@pytest.mark.parametrize(
    ("address", "provider"),
    [
        ("ada@gmail.com", "google"),
        ("Ada@GoogleMail.com", "google"),
        ("bo@outlook.com", "microsoft"),
        ("bo@hotmail.co.uk", "microsoft"),
        ("cy@yahoo.fr", "yahoo"),
        ("di@aol.com", "yahoo"),
        ("ed@icloud.com", "apple"),
        ("fe@web.de", "gmx"),
        ("gu@mail.ru", "mailru"),
        ("ha@sub.example.org", "sub.example.org"),
        ("notgmail.com@example.net", "example.net"),
    ],
)
def test_addresses_are_grouped_by_provider(address, provider):
    assert provider_of(address) == provider


@pytest.mark.parametrize(
    ("code", "text", "slow_down"),
    [
        (421, "421 4.7.28 Our system has detected an unusual rate of unsolicited mail", True),
        (450, "450 4.7.650 The mail server has been temporarily rate limited", True),
        (451, "451 Temporarily deferred due to user complaints - 4.16.55.1; see TSS04", True),
        (454, "454 4.7.0 Throttling failure: Maximum sending rate exceeded.", True),
        (450, "450 4.2.1 The user you are trying to contact is receiving mail too quickly", False),
        (451, "451 4.3.0 Mail server temporarily rejected message", False),
        (550, "550 5.7.1 rate limited", False),
    ],
)
def test_throttling_replies_are_told_from_other_refusals(code, text, slow_down):
    assert throttled(code, text) is slow_down


@pytest.mark.parametrize(
    ("error", "provider"),
    [
        (smtplib.SMTPRecipientsRefused({"a@gmail.com": (421, b"4.7.28 rate limited")}), True),
        (smtplib.SMTPDataError(451, b"4.7.650 temporarily rate limited"), True),
        # Our account at the relay, not the reader's provider: the relay's quota, or MAIL refused.
        (smtplib.SMTPDataError(454, b"4.7.0 Throttling failure: Maximum sending rate exceeded."), False),
        (smtplib.SMTPSenderRefused(421, b"4.7.0 Try again later", "news@example.com"), False),
        (smtplib.SMTPRecipientsRefused({"a@gmail.com": (550, b"5.1.1 no such user")}), False),
    ],
)
def test_only_a_providers_own_throttling_slows_that_provider(error, provider):
    assert provider_throttled(error) is provider
