"""Senders under faults: real sender processes sharing only the database, a relay that records what it accepts.

Each scenario puts one fault in the way of a run (a kill, a freeze past the lease, a stop,
the database connection terminated, a relay that drops, throttles, refuses or never
greets, a machine clock eleven minutes ahead) and checks the guarantees in conftest.py:
no reader ever gets another's message, nobody is lost, and duplicates stay within the
messages in flight (none for a graceful stop), with the same Message-ID.

Run on their own with `pytest -m faults`; `make test` runs them with the rest.
"""

import datetime
import signal

import pytest
import redis
from django.db import connection
from django.utils import timezone

from digest.models import Delivery, DeliveryStatus, JournalEntry
from digest.run import digest_run
from project.clock import db_now
from tests.digest.conftest import World, leases_expire
from tests.faults.conftest import RUN_AT, gated_relay, guarantees, mid_batch, readers, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
LATER = RUN_AT + datetime.timedelta(minutes=10)  # past the deferred messages' first backoff


@postgres_only
def test_a_database_connection_terminated_mid_chain_never_reaches_the_wrong_reader(settings, tmp_path):
    # D1: the journal write fails on a pool thread while the next message's envelope is
    # already written and its replies unread. That connection must never carry another message.
    with mid_batch(settings, tmp_path / "a", count=60, at=20, connections=3, BATCH_SIZE=60) as scene:
        with connection.cursor() as cursor:  # every database connection but this test's
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        scene.gate.reopen()
        out, err = scene.process.communicate(timeout=60)
        assert scene.process.returncode == 1 and "Sending stopped" in err, (out, err)
        # The sender reconnected to record what it knew: nothing is left claimed.
        assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()
        summary = digest_run(now=LATER)
    assert summary.failed == 0
    guarantees(scene.smtp.received, emails=scene.emails, duplicates_at_most=3)


def test_a_killed_sender_resends_at_most_the_messages_in_flight(settings, tmp_path):
    with mid_batch(settings, tmp_path / "dead", count=40, at=10, connections=4, BATCH_SIZE=20) as scene:
        scene.process.kill()
        scene.process.wait(30)
        scene.gate.reopen()
        assert leases_expire() > 0  # nobody renews a dead sender's lease
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))
    assert summary.deferred == summary.failed == 0
    assert 1 <= guarantees(scene.smtp.received, emails=scene.emails, duplicates_at_most=4)
    assert not JournalEntry.objects.exists()


def test_a_sender_frozen_past_its_lease_sends_nothing_more_when_it_wakes(settings, tmp_path):
    # D3: SIGSTOP for longer than the lease; another sender takes the claims over (after
    # applying the frozen one's journal). Woken, the frozen one must stop at once and say so.
    lease = settings.DIGEST_CLAIM_TIMEOUT = 3
    frozen = tmp_path / "frozen"
    with mid_batch(settings, frozen, count=30, at=6, connections=2, BATCH_SIZE=30, CLAIM_TIMEOUT=lease) as scene:
        scene.process.send_signal(signal.SIGSTOP)
        scene.gate.reopen()
        expired = lambda: Delivery.objects.filter(  # noqa: E731
            status=DeliveryStatus.SENDING, claimed_at__lt=db_now() - datetime.timedelta(seconds=lease)
        ).exists()
        wait_until(expired, timeout=30, what="the frozen sender's lease to run out on the database's clock")
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))
        scene.process.send_signal(signal.SIGCONT)
        out, err = scene.process.communicate(timeout=60)
    assert scene.process.returncode == 1, (out, err)
    assert "lease" in err or "taken over" in err, err  # it says why it stopped
    assert summary.sent > 0
    guarantees(scene.smtp.received, emails=scene.emails, duplicates_at_most=2)


def test_a_stopped_sender_finishes_what_is_in_flight_and_hands_back_the_rest(settings, tmp_path):
    # SIGTERM (systemd stop, a deploy): no message is sent twice, nothing stays claimed.
    with mid_batch(settings, tmp_path / "stopped", count=40, at=9, connections=3, BATCH_SIZE=40) as scene:
        scene.process.terminate()
        scene.gate.reopen()
        out, err = scene.process.communicate(timeout=30)  # within the bound
        assert scene.process.returncode == 0, (out, err)
        assert "stopped early" in out and "handed back" in out, out
        assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))
    assert summary.sent > 0 and summary.deferred == summary.failed == 0
    assert guarantees(scene.smtp.received, emails=scene.emails, duplicates_at_most=0) == 0


@postgres_only
def test_a_machine_clock_eleven_minutes_ahead_takes_over_no_live_claim(settings, tmp_path, monkeypatch):
    # D4: expiry is judged on the database's clock. A sender whose machine clock is ahead
    # (faked in this process) runs beside a live one and must leave its claims alone, though
    # it watches them for a whole lease (4 s here) before it ends.
    lease = settings.DIGEST_CLAIM_TIMEOUT = 4
    live = tmp_path / "live"
    with mid_batch(settings, live, count=30, at=4, connections=2, BATCH_SIZE=30, CLAIM_TIMEOUT=lease) as scene:
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(minutes=11))
        skewed = digest_run(now=RUN_AT + datetime.timedelta(minutes=11))
        monkeypatch.undo()
        scene.gate.reopen()
        out, err = scene.process.communicate(timeout=60)
        assert scene.process.returncode == 0, (out, err)
    assert "recovered" not in out
    assert skewed.sent == 0  # the live sender holds every claim
    assert guarantees(scene.smtp.received, emails=scene.emails, duplicates_at_most=0) == 0


def test_a_sender_with_nothing_left_takes_over_a_dead_ones_batch_within_a_lease(settings, tmp_path):
    # Recovery needs no later cron run while another sender is still at work: one that runs
    # out of claims watches the others' and takes over those whose lease runs out.
    lease = settings.DIGEST_CLAIM_TIMEOUT = 3
    with mid_batch(
        settings, tmp_path / "dead", count=30, at=8, connections=2, BATCH_SIZE=30, CLAIM_TIMEOUT=lease
    ) as scene:
        scene.process.kill()
        scene.process.wait(30)
        scene.gate.reopen()
        # Its claims are still within their lease: a run now finds nothing to claim, waits, takes over.
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))
    assert summary.sent > 0 and summary.deferred == summary.failed == 0
    assert guarantees(scene.smtp.received, emails=scene.emails, duplicates_at_most=2) >= 1
    assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()


@postgres_only
def test_publishing_and_the_schedule_read_the_database_clock_not_the_machines(settings, monkeypatch):
    # D5: an issue published on a web server whose clock is behind, and a cron machine whose
    # clock is ahead, still agree on which window the issue is in: both use the database's.
    from digest.cron import send_digests_job
    from digest.models import Run
    from newsletters.admin import IssueForm
    from tests.factories import IssueFactory, NewsletterFactory

    newsletter = NewsletterFactory(slug="clock")
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - datetime.timedelta(minutes=5))
    issue = IssueFactory(newsletter=newsletter, status="draft", publish_at=None)
    form = IssueForm(
        instance=issue,
        data={
            "newsletter": newsletter.pk,
            "title": "T",
            "slug": "t",
            "body": "b",
            "preheader": "",
            "status": "published",
        },
    )
    assert form.is_valid(), form.errors
    published = form.save()
    monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(minutes=5))
    send_digests_job()
    assert abs(published.publish_at - db_now()) < datetime.timedelta(minutes=1)
    assert abs(Run.objects.get().now - db_now()) < datetime.timedelta(minutes=1)


RELAY_FAULTS = {
    "drops a connection mid-transaction": {"drop_after": 7},
    "answers 421 beyond two connections": {"max_connections": 2},
    "throttles with a burst of 454s": {"throttle_data_first": 6},
    "throttles MAIL with 454s": {"throttle_first": 5},
}


@pytest.mark.parametrize("pipelining", [False, True])
@pytest.mark.parametrize("fault", list(RELAY_FAULTS))
def test_relay_faults_lose_and_misdirect_nothing(world, settings, fault, pipelining):
    settings.DIGEST_CONNECTIONS = 4
    handler = world.smtp.handler
    handler.pipelining = pipelining
    for name, value in RELAY_FAULTS[fault].items():
        setattr(handler, name, value)
    emails = readers(world, 30)
    summary = world.run(RUN_AT)
    assert summary.sent == 30, summary
    guarantees(list(world.smtp.received), emails=emails, duplicates_at_most=0)


def test_a_relay_that_never_greets_is_given_up_on_and_its_digests_wait(world, settings):
    mailer = world.smtp.mailer()
    settings.MAILERS = settings.MAILERS | {"digest": mailer | {"OPTIONS": mailer["OPTIONS"] | {"timeout": 0.5}}}
    settings.DIGEST_CONNECTIONS = 3
    world.smtp.handler.greet_at_most = 0
    emails = readers(world, 12)
    first = world.run(RUN_AT)
    assert (first.sent, first.deferred) == (0, 12)
    world.smtp.handler.greet_at_most = None  # the relay is back
    again = world.run(LATER)
    assert again.sent == 12
    guarantees(list(world.smtp.received), emails=emails, duplicates_at_most=0)


@postgres_only
@pytest.mark.parametrize("backend", ["database", "rq"])
def test_a_worker_asked_to_stop_finishes_its_task_gracefully(settings, tmp_path, backend):
    # db_worker and rqworker: SIGTERM lets the send task finish the messages in flight,
    # record them and hand the rest back; the worker then stops. Another worker sends the rest.
    from tests.digest.test_workers import Machines, redis_reachable

    if backend == "rq":
        if not redis_reachable():
            pytest.skip("Redis is not reachable at 127.0.0.1:6379")
        redis.Redis.from_url("redis://127.0.0.1:6379/14").flushdb()  # workers killed earlier stay registered
    connections = 2
    with gated_relay(settings, at=6, hold=connections) as (smtp, gate):
        machines = Machines(backend, smtp, tmp_path)
        machines.env |= {"DIGEST_BATCH_SIZE": "40", "DIGEST_SEND_TASKS": "1", "DIGEST_CONNECTIONS": str(connections)}
        try:
            emails = readers(World(smtp), 40)
            cron = machines.command("send_digests", "--now", RUN_AT.isoformat(), name="cron")
            assert cron.wait(60) == 0, (tmp_path / "cron.log").read_text()
            machines.start_worker()
            assert gate.reached.wait(60), (tmp_path / "worker1.log").read_text()
            worker = machines.workers["worker1"]
            worker.terminate()
            gate.reopen()
            assert worker.wait(30) == 0, (tmp_path / "worker1.log").read_text()  # stopped within the bound
            assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()
            assert Delivery.objects.filter(status=DeliveryStatus.PENDING).exists()  # the rest, handed back
            machines.start_worker()
            later = RUN_AT + datetime.timedelta(minutes=1)
            rerun = machines.command("send_digests", "--now", later.isoformat(), "--wait", name="rerun")
            assert rerun.wait(60) == 0, (tmp_path / "rerun.log").read_text()
        finally:
            machines.stop()
    assert guarantees(smtp.received, emails=emails, duplicates_at_most=0) == 0
