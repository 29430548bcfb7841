"""Real sender processes: two at once never send twice; a killed one resends only its message in flight.

These commit their data (transaction=True) so that `manage.py send_digests` processes,
started as an operator's cron would, see it in the test database.
"""

import collections
import datetime
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from digest import processes
from digest.models import Delivery, DeliveryStatus, JournalEntry
from digest.run import digest_run
from tests.digest.conftest import World, at, leases_expire
from tests.smtp import BlockingHandler, SlowReplyHandler, SMTPServer

pytestmark = pytest.mark.django_db(transaction=True)

RUN_AT = at(2026, 6, 2, 8, 5)


def database_url() -> str:
    """The test database's URL, for processes started from the test (as the run starts its senders)."""
    return processes.database_url(connection.settings_dict)


def sender(smtp: SMTPServer, machine: Path, *, now=RUN_AT, **settings) -> subprocess.Popen:
    """Start `send_digests` as on another machine: its own VAR_DIR, nothing shared but the database.

    `settings` are DIGEST_* settings without the prefix, e.g. BATCH_SIZE=5, CONNECTIONS=4.
    """
    env = os.environ | {"VAR_DIR": str(machine), "DATABASE_URL": database_url(), "EMAIL_URL": smtp.url()}
    env |= {f"DIGEST_{name}": str(value) for name, value in settings.items()}
    return subprocess.Popen(
        # One process each: these are the senders of several machines (or of a killed run).
        [sys.executable, "manage.py", "send_digests", "--now", now.isoformat(), "--processes", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def readers(world: World, count: int) -> list[str]:
    emails = [f"reader{n:03}@example.com" for n in range(count)]
    for email in emails:
        world.subscribe(email, frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    return emails


def test_two_senders_at_once_never_send_the_same_digest(settings, tmp_path):
    with SMTPServer() as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        emails = readers(World(smtp), 120)
        first = sender(smtp, tmp_path / "a", BATCH_SIZE=7, CONNECTIONS=1)
        second = sender(smtp, tmp_path / "b", BATCH_SIZE=7, CONNECTIONS=1)
        outputs = [process.communicate(timeout=120) for process in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outputs
        per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    assert per_reader == dict.fromkeys(emails, 1)
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 120
    # Both processes did part of the work (each reports its own count).
    sent = [int(out.strip().splitlines()[-1].split(" sent")[0].split()[-1]) for out, _ in outputs]
    assert sum(sent) == 120
    # The one group was rendered once: the other process waited for it and reused it.
    rendered = [int(out.strip().splitlines()[-1].split(" groups rendered")[0].split()[-1]) for out, _ in outputs]
    assert sum(rendered) == 1, outputs


def test_killed_sender_resends_only_the_message_in_flight(settings, tmp_path):
    handler = BlockingHandler(block_at=8)
    with SMTPServer(handler) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        emails = readers(World(smtp), 12)
        process = sender(smtp, tmp_path / "dead", BATCH_SIZE=5, CONNECTIONS=1)
        assert handler.reached.wait(60), process.communicate(timeout=5)
        process.kill()  # SIGKILL mid-batch: 5 recorded, 2 accepted but unrecorded, 1 in flight
        process.wait(timeout=30)
        handler.release.set()
        assert Delivery.objects.filter(status=DeliveryStatus.SENDING).count() == 5
        assert len(smtp.received) == 7

        assert leases_expire() > 0  # as a lease's time passing without a renewal would
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))

    # The server dropped the message in flight with the connection, so the later run (in
    # this process, another VAR_DIR) sent it once; the two it had accepted were recovered
    # from the dead run's journal in the database, not resent.
    per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    assert per_reader == dict.fromkeys(emails, 1)
    assert summary.sent == 7  # 2 recovered from the dead run's journal, 5 sent now
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 12
    assert not JournalEntry.objects.exists()


def test_killed_pooled_sender_resends_at_most_one_message_per_connection(settings, tmp_path):
    connections = 4
    handler = SlowReplyHandler(pipelining=True, hold_after=10, hold_count=connections)
    with SMTPServer(handler) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        emails = readers(World(smtp), 40)
        process = sender(smtp, tmp_path / "dead", BATCH_SIZE=20, CONNECTIONS=connections)
        # Every connection has a message the relay accepted but whose reply is still on its way.
        assert handler.reached.wait(60), process.communicate(timeout=5)
        process.kill()
        process.wait(timeout=30)
        handler.release.set()
        assert leases_expire() > 0  # as a lease's time passing without a renewal would
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))

    per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    assert set(per_reader) == set(emails)  # nobody lost
    duplicates = sum(count - 1 for count in per_reader.values())
    assert 1 <= duplicates <= connections  # at most the messages in flight, one per connection
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 40
    assert summary.failed == summary.deferred == 0


def run_command(smtp: SMTPServer, machine: Path, *arguments: str, **settings) -> subprocess.Popen:
    """`manage.py send_digests ARGUMENTS` with DIGEST_* settings, as cron would start it."""
    env = os.environ | {"VAR_DIR": str(machine), "DATABASE_URL": database_url(), "EMAIL_URL": smtp.url()}
    env |= {f"DIGEST_{name}": str(value) for name, value in settings.items()}
    return subprocess.Popen(
        [sys.executable, "manage.py", "send_digests", "--now", RUN_AT.isoformat(), *arguments],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="several writers need PostgreSQL")


@needs_postgresql
def test_processes_send_each_digest_once_with_every_process_sharing_the_work(settings, tmp_path):
    with SMTPServer() as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        emails = readers(World(smtp), 150)
        # A rate limit long enough for both processes to be claiming when the work runs out.
        run = run_command(smtp, tmp_path, "--processes", "2", "--json", BATCH_SIZE=10, RATE_LIMIT=60, CONNECTIONS=4)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err[-2000:]
        per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    assert per_reader == dict.fromkeys(emails, 1)
    summary = json.loads(out)
    assert summary["sent"] == 150 and summary["failed"] == summary["deferred"] == 0
    assert summary["groups_rendered"] == 1  # one rendering, shared through the Rendering row
    assert summary["connections_at_once"] <= 4  # the budget shared: 2 each
    claimants = set(Delivery.objects.values_list("claimed_by", flat=True))
    assert len(claimants) == 2, claimants  # both processes sent part of it
    assert "sending with 2 processes, 2 connections each" in err


def test_on_sqlite_more_processes_are_refused_with_the_reason(settings, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite rule")
    with SMTPServer() as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        emails = readers(World(smtp), 5)
        run = run_command(smtp, tmp_path, "--processes", "2")
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err[-2000:]
        assert len(smtp.received) == len(emails)
    assert "sending with one process: SQLite lets one process write at a time" in out
    assert "5 sent" in out


@needs_postgresql
def test_a_killed_run_leaves_no_sender_behind_and_nothing_is_lost(settings, tmp_path):
    handler = BlockingHandler(block_at=15)
    with SMTPServer(handler) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        emails = readers(World(smtp), 40)
        run = run_command(smtp, tmp_path, "--processes", "2", BATCH_SIZE=5, CONNECTIONS=2)
        assert handler.reached.wait(60), run.communicate(timeout=5)
        senders = children_of(run.pid)
        assert len(senders) == 2
        run.kill()  # SIGKILL: the run cannot tell its senders anything
        run.wait(timeout=30)
        handler.release.set()
        # Each sender was sent SIGTERM by the kernel when the run died: it finishes the message
        # in flight, records what it sent, hands the rest back and ends.
        for pid in senders:
            assert ended(pid, timeout=60), f"sender {pid} still running"
        assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()
        summary = digest_run(now=RUN_AT + datetime.timedelta(minutes=1))
    per_reader = collections.Counter(r.recipients[0] for r in smtp.received)
    assert per_reader == dict.fromkeys(emails, 1)  # the later run sent what the senders handed back, once
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 40
    assert summary.failed == summary.deferred == 0


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux's /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def ended(pid: int, *, timeout: float) -> bool:
    """Wait for a process that is not our child to end (a pidfd becomes readable when it does)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([descriptor], [], [], timeout)[0])
    finally:
        os.close(descriptor)
