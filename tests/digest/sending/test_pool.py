"""The pool of SMTP connections, against real aiosmtpd relays: drops, 421, throttling, a relay down, TLS, rate."""

import collections

import pytest
from django.core.mail.backends import locmem

from digest.models import Delivery, DeliveryStatus
from digest.sending.relays import RateLimiter
from tests.digest.conftest import World, at
from tests.smtp import RecordingHandler, SMTPServer, TurnCounter, free_port, self_signed_certificate

pytestmark = pytest.mark.django_db


def readers(world: World, count: int) -> list[str]:
    emails = [f"r{n:03}@example.com" for n in range(count)]
    for email in emails:
        world.subscribe(email, since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    return emails


def each_once(smtp: SMTPServer, emails: list[str]) -> bool:
    return collections.Counter(r.recipients[0] for r in smtp.received) == dict.fromkeys(emails, 1)


def test_messages_go_out_over_several_connections_at_once(world, settings):
    settings.DIGEST_CONNECTIONS = 4
    emails = readers(world, 40)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 40 and each_once(world.smtp, emails)
    assert 2 <= world.smtp.handler.most_open <= 4
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 40


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_relay_that_drops_connections_loses_and_duplicates_nothing(world, settings, pipelining):
    settings.DIGEST_CONNECTIONS = 4
    world.smtp.handler.pipelining = pipelining
    world.smtp.handler.drop_after = 5  # hangs up mid-transaction once, without accepting
    emails = readers(world, 30)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 30 and each_once(world.smtp, emails)


def test_a_relay_that_answers_421_to_the_third_connection_shrinks_the_pool(world, settings):
    settings.DIGEST_CONNECTIONS = 6
    world.smtp.handler.max_connections = 2
    emails = readers(world, 30)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 30 and each_once(world.smtp, emails)
    assert world.smtp.handler.refused_connections >= 1
    assert world.smtp.handler.most_open == 2


def impatient(world: World, settings, seconds: float) -> None:
    """The digest mailer waits `seconds` for the relay (its greeting included)."""
    mailer = world.smtp.mailer()
    settings.MAILERS = settings.MAILERS | {"digest": mailer | {"OPTIONS": mailer["OPTIONS"] | {"timeout": seconds}}}


def test_a_relay_that_leaves_further_connections_ungreeted_shrinks_the_pool(world, settings, caplog):
    # smtp-sink, or Postfix at its process limit: the connection is accepted, the greeting never comes.
    impatient(world, settings, 2)
    settings.DIGEST_CONNECTIONS = 6
    world.smtp.handler.greet_at_most = 2
    emails = readers(world, 30)
    with caplog.at_level("INFO", logger="digest.sending.pool"):
        summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred, summary.failed) == (30, 0, 0) and each_once(world.smtp, emails)
    assert world.smtp.handler.silent_connections == 4 and world.smtp.handler.most_open == 2
    # A connection limit, not an outage: four fewer connections, once each; the relay is not skipped.
    assert sum("did not greet one more connection" in r.getMessage() for r in caplog.records) == 4
    assert not any("Cannot connect to relay" in r.getMessage() for r in caplog.records)


def test_a_relay_that_greets_no_connection_at_all_is_down_and_its_digests_wait(world, settings, caplog):
    # Silence everywhere is an outage, not a connection limit: the pool does not shrink.
    impatient(world, settings, 0.5)
    settings.DIGEST_CONNECTIONS = 3
    world.smtp.handler.greet_at_most = 0
    readers(world, 5)
    with caplog.at_level("INFO", logger="digest.sending.pool"):
        summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred) == (0, 5)
    assert world.smtp.received == []
    assert not any("did not greet" in r.getMessage() for r in caplog.records)
    assert any("Cannot connect to relay" in r.getMessage() for r in caplog.records)


def test_a_digest_mailer_that_fails_silently_defers_instead_of_losing_track(world, settings):
    # fail_silently=True: Django's backend returns from open() with no connection and no error.
    settings.MAILERS = settings.MAILERS | {
        "digest": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2, "fail_silently": True},
        }
    }
    settings.DIGEST_CONNECTIONS = 2
    readers(world, 4)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred) == (0, 4)
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DEFERRED}


@pytest.mark.parametrize("pipelining", [False, True])
def test_throttling_slows_down_and_retries_instead_of_deferring(world, settings, pipelining):
    settings.DIGEST_CONNECTIONS = 1
    world.smtp.handler.pipelining = pipelining
    world.smtp.handler.throttle_first = 1  # "454 Throttling failure" once, then accepted
    emails = readers(world, 3)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred, summary.failed) == (3, 0, 0)
    assert each_once(world.smtp, emails)


def test_a_throttled_final_dot_is_retried_on_the_chain(world, settings, monkeypatch):
    monkeypatch.setattr("digest.sending.pool.THROTTLE_WAITS", (0.01, 0.01))
    settings.DIGEST_CONNECTIONS = 1
    world.smtp.handler.pipelining = True
    world.smtp.handler.throttle_data_first = 2  # the first two messages' "." get 454
    emails = readers(world, 6)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred, summary.failed) == (6, 0, 0)
    assert each_once(world.smtp, emails)


@pytest.mark.parametrize("pipelining", [False, True])
def test_with_pipelining_each_message_costs_one_round_trip(world, settings, pipelining):
    # A far relay costs a round trip each time the sender must wait for its replies.
    # Offered PIPELINING, a message's content and final dot go out with the next message's
    # MAIL, RCPT and DATA, so a connection waits once per message instead of twice.
    world.smtp.handler.pipelining = pipelining
    emails = readers(world, 40)
    with TurnCounter(world.smtp.port) as proxy:
        settings.MAILERS = {
            **settings.MAILERS,
            "digest": {**world.smtp.mailer(), "OPTIONS": {"host": "127.0.0.1", "port": proxy.port, "timeout": 10}},
        }
        settings.DIGEST_CONNECTIONS = 1
        summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 40 and each_once(world.smtp, emails)
    # EHLO and QUIT add a few turns; without pipelining each message takes two, or four.
    if pipelining:
        assert proxy.turns <= 40 + 5
    else:
        assert proxy.turns >= 2 * 40


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_relay_that_keeps_throttling_defers_to_a_later_run(world, settings, monkeypatch, pipelining):
    monkeypatch.setattr("digest.sending.pool.THROTTLE_WAITS", (0.01, 0.01))
    settings.DIGEST_CONNECTIONS = 1
    world.smtp.handler.pipelining = pipelining
    world.smtp.handler.throttle_first = 10**6
    readers(world, 2)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred, summary.failed) == (0, 2, 0)
    assert all("throttled" in d.last_error for d in Delivery.objects.all())
    assert world.smtp.handler.mails == 6  # each message: the first try and two retries


def test_a_relay_down_among_two_is_skipped(world, settings):
    settings.DIGEST_CONNECTIONS = 4
    settings.MAILERS = {
        **settings.MAILERS,
        "down": {**world.smtp.mailer(), "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2}},
    }
    settings.DIGEST_MAILERS = "down,digest"
    emails = readers(world, 20)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 20 and each_once(world.smtp, emails)


def test_every_relay_down_defers_everything(world, settings):
    settings.MAILERS = {
        **settings.MAILERS,
        "down": {**world.smtp.mailer(), "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2}},
    }
    settings.DIGEST_MAILERS = "down"
    readers(world, 5)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred) == (0, 5)
    assert all(d.last_error == "cannot connect to the mail server" for d in Delivery.objects.all())


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by this test's TLS clients."""
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # what ssl.create_default_context() trusts
    return cert, key


def test_every_pooled_connection_uses_starttls(db, settings, certificate):
    with SMTPServer(RecordingHandler(pipelining=True), tls=certificate) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        settings.DIGEST_CONNECTIONS = 4
        world = World(smtp)
        emails = readers(world, 20)
        summary = world.run(at(2026, 6, 2, 8, 5))
        assert summary.sent == 20 and each_once(smtp, emails)
        assert smtp.handler.most_open >= 2
        assert smtp.handler.tls_at_mail and all(smtp.handler.tls_at_mail)


def test_the_rate_limit_spaces_messages_across_connections():
    clock = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(14, clock=lambda: clock[0], sleep=sleep)  # SES's starting quota
    for _ in range(29):
        limiter.wait()
    assert clock[0] == pytest.approx(28 / 14)  # 29 starts in two seconds, none early
    assert RateLimiter(0).interval == 0.0


def test_the_rate_limit_holds_across_the_pool(world, settings):
    import time

    settings.DIGEST_CONNECTIONS = 4
    settings.DIGEST_RATE_LIMIT = 40
    readers(world, 11)
    started = time.monotonic()
    assert world.run(at(2026, 6, 2, 8, 5)).sent == 11
    assert time.monotonic() - started >= 10 / 40  # 11 starts, 1/40 s apart at least


def test_an_error_while_building_stops_the_connections_instead_of_hanging(world, settings, tmp_path):
    import threading

    from digest.sending.journal import Journal
    from digest.sending.pool import Pool
    from tests.factories import claimant_new

    pool = Pool(aliases=["digest"], size=4, rate=0)
    before = threading.active_count()

    def items():
        yield from ()
        raise ValueError("a bug while building")

    with pytest.raises(ValueError):
        pool.send(items(), journal=Journal(claimant_new()), expected=10)
    pool.close()
    assert threading.active_count() == before  # every connection thread ended


class FailingAPIBackend(locmem.EmailBackend):
    """An ESP's HTTP API backend, as anymail's: it raises its own errors, not SMTP ones."""

    def send_messages(self, messages):
        if any("r002@" in address for message in messages for address in message.to):
            raise RuntimeError("ESP API answered 503 Service Unavailable")
        return super().send_messages(messages)


def test_a_mailer_raising_its_own_error_defers_only_that_delivery(world, settings):
    from django.core import mail

    settings.MAILERS = {**settings.MAILERS, "digest": {"BACKEND": f"{__name__}.FailingAPIBackend"}}
    settings.DIGEST_CONNECTIONS = 2
    readers(world, 6)
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred) == (5, 1)
    assert len(mail.outbox) == 5
    failed = Delivery.objects.get(status=DeliveryStatus.DEFERRED)
    assert failed.subscription.subscriber.email == "r002@example.com"
    assert "503 Service Unavailable" in failed.last_error
    assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()


@pytest.mark.parametrize("connections", [1, 3])
def test_backends_without_an_smtp_connection_send_every_message(world, settings, connections):
    from django.core import mail

    settings.MAILERS = {**settings.MAILERS, "digest": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    settings.DIGEST_CONNECTIONS = connections
    emails = readers(world, 7)
    assert world.run(at(2026, 6, 2, 8, 5)).sent == 7
    assert sorted(address for message in mail.outbox for address in message.to) == sorted(
        f"R{n:03} <{email}>" for n, email in enumerate(emails)
    )


def test_after_a_421_the_pool_regrows_once_the_relay_accepts_again(world, settings, monkeypatch):
    # A relay at its connection limit answers 421 for a while; later batches of the same
    # run try one more connection again each (after RELAY_RETRY_SECONDS, here 0) and get it.
    monkeypatch.setattr("digest.sending.relays.RELAY_RETRY_SECONDS", 0)
    settings.DIGEST_CONNECTIONS, settings.DIGEST_BATCH_SIZE = 6, 10
    handler = world.smtp.handler
    handler.max_connections = 2
    emails = readers(world, 60)
    original = handler.handle_DATA

    async def lift_the_limit(server, session, envelope):
        if len(handler.received) >= 10:
            handler.max_connections = None  # the relay accepts more connections again
        return await original(server, session, envelope)

    handler.handle_DATA = lift_the_limit
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 60 and each_once(world.smtp, emails)
    assert handler.refused_connections >= 1
    assert handler.most_open > 2


def test_a_mailer_without_a_timeout_gets_the_pools_default(world, settings):
    from digest.sending.pool import Pool
    from digest.sending.relays import DEFAULT_TIMEOUT

    mailer = world.smtp.mailer()
    settings.MAILERS = settings.MAILERS | {"digest": mailer | {"OPTIONS": mailer["OPTIONS"] | {"timeout": None}}}
    pool = Pool(aliases=["digest"], size=1, rate=0)
    connection = pool.relays.checkout()
    assert pool.relays.ready(connection)
    assert connection.backend.timeout == DEFAULT_TIMEOUT
    assert connection.backend.connection.sock.gettimeout() == DEFAULT_TIMEOUT
    pool.relays.checkin(connection)
    pool.close()
