"""Real task workers on PostgreSQL, each as on its own machine: killed mid-batch, every digest still arrives once.

`send_digests` (as cron runs it) plans 5,000 digests and enqueues send tasks; two or three
workers (django-tasks-db's `db_worker`, or RQ's `rqworker` on Redis), each with its own
VAR_DIR, send them to a real SMTP server. Three times, while every connection has a
message the server accepted but whose reply it holds, one worker is SIGKILLed and
another is started. A later run recovers what the dead workers' journals (in the
database) prove was sent and sends the rest.
"""

import collections
import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from digest.models import Delivery, DeliveryStatus, JournalEntry
from newsletters.models import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from tests.digest.conftest import at, leases_expire
from tests.digest.test_processes import database_url
from tests.factories import IssueFactory, NewsletterFactory
from tests.smtp import GateHandler, SMTPServer

REDIS_URL = "rq://127.0.0.1:6379/14"
READERS = 5000
CONNECTIONS = 2
KILLS = 3
RUN_AT = at(2026, 6, 2, 8, 5)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="workers on several machines need PostgreSQL (SKIP LOCKED)"
    ),
]


def redis_reachable() -> bool:
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/14", socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


def readers(count: int) -> None:
    """Create `count` confirmed daily readers of one newsletter (in bulk: factories take too long)."""
    newsletter = NewsletterFactory(slug="daily", send_time=datetime.time(8, 0))
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n:05}@example.com", name=f"R{n}", status=SubscriberStatus.ACTIVE)
        for n in range(count)
    )
    Subscription.objects.bulk_create(
        Subscription(subscriber=s, newsletter=newsletter, frequency="daily", status=SubscriptionStatus.ACTIVE)
        for s in subscribers
    )
    Subscription.objects.update(created_at=at(2026, 6, 1))
    IssueFactory(newsletter=newsletter, title="Issue a", body="Short.", publish_at=at(2026, 6, 1, 12, 0))


class Machines:
    """Worker processes of one task backend, each with its own VAR_DIR; the env every command shares."""

    def __init__(self, backend: str, smtp: SMTPServer, tmp_path: Path):
        self.backend = backend
        self.tmp_path = tmp_path
        self.env = os.environ | {
            "DATABASE_URL": database_url(),
            "EMAIL_URL": smtp.url(),
            "TASKS_URL": "database://" if backend == "database" else REDIS_URL,
            "DIGEST_BATCH_SIZE": "100",
            "DIGEST_CONNECTIONS": str(CONNECTIONS),
            "DIGEST_SEND_TASKS": "8",
        }
        self.workers: dict[str, subprocess.Popen] = {}
        self.killed: set[str] = set()

    def command(self, *args: str, name: str) -> subprocess.Popen:
        env = self.env | {"VAR_DIR": str(self.tmp_path / name)}
        log = (self.tmp_path / f"{name}.log").open("w")
        return subprocess.Popen([sys.executable, "manage.py", *args], env=env, stdout=log, stderr=subprocess.STDOUT)

    def start_worker(self) -> None:
        name = f"worker{len(self.workers) + 1}"
        if self.backend == "database":
            args = ["db_worker", "--worker-id", name, "--interval", "0.1", "--no-startup-delay", "--no-reload"]
        else:
            args = [
                "rqworker",
                "default",
                "--name",
                name,
                "--worker-class",
                "rq.worker.SimpleWorker",
                "--job-class",
                "django_tasks_rq.backend.Job",
            ]
        self.workers[name] = self.command(*args, name=name)

    def worker_of(self, task_id: str) -> str | None:
        """Name the worker running (or that ran) the send task whose id is this claimant."""
        if self.backend == "database":
            from django_tasks_db.models import DBTaskResult

            ids = DBTaskResult.objects.filter(id=task_id).values_list("worker_ids", flat=True).first()
            return ids[-1] if ids else None
        from rq.job import Job

        return Job.fetch(task_id, connection=redis.Redis.from_url("redis://127.0.0.1:6379/14")).worker_name

    def sending_workers(self) -> set[str]:
        claimants = Delivery.objects.filter(status=DeliveryStatus.SENDING).values_list("claimed_by", flat=True)
        return {self.worker_of(claimant) for claimant in set(claimants)}

    def kill_one_mid_batch(self) -> None:
        alive = sorted(self.sending_workers() - self.killed - {None})
        assert alive, "no worker was sending"
        process = self.workers[alive[0]]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        self.killed.add(alive[0])

    def settled(self) -> bool:
        """Whether only dead workers' claims are left: nothing pending, every delivery in flight is theirs."""
        return not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists() and not (
            self.sending_workers() - self.killed
        )

    def tasks_finished(self) -> bool:
        from django_tasks_db.models import DBTaskResult

        running = DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).values_list("worker_ids", flat=True)
        return all(ids and ids[-1] in self.killed for ids in running)

    def stop(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.terminate()
        for process in self.workers.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until(condition, *, timeout: float, what: str) -> None:
    """Poll `condition` until it holds: the workers are other processes, with nothing to wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["database", "rq"])
def test_workers_killed_mid_batch_lose_nothing_and_resend_only_messages_in_flight(backend, tmp_path):
    if backend == "rq":
        if not redis_reachable():
            pytest.skip("Redis is not reachable at 127.0.0.1:6379")
        redis.Redis.from_url("redis://127.0.0.1:6379/14").flushdb()
    readers(READERS)
    handler = GateHandler(pipelining=True)
    with SMTPServer(handler) as smtp:
        machines = Machines(backend, smtp, tmp_path)
        try:
            cron = machines.command("send_digests", "--now", RUN_AT.isoformat(), name="cron")
            assert cron.wait(60) == 0, (tmp_path / "cron.log").read_text()
            for _ in range(3):
                machines.start_worker()
            for kill in range(KILLS):
                # Every connection of at least two workers has a message accepted but unanswered.
                handler.close(at=1000 + 1000 * kill, hold_count=2 * CONNECTIONS)
                assert handler.reached.wait(60), "the workers did not reach the gate"
                machines.kill_one_mid_batch()
                machines.start_worker()
                handler.reopen()
            wait_until(machines.settled, timeout=60, what="the surviving workers to finish")
            leases_expire()  # the dead workers' leases run out
            later = RUN_AT + datetime.timedelta(minutes=1)
            rerun = machines.command("send_digests", "--now", later.isoformat(), "--wait", name="rerun")
            assert rerun.wait(60) == 0, (tmp_path / "rerun.log").read_text()
            if backend == "database":
                wait_until(machines.tasks_finished, timeout=60, what="every send task to finish")
        finally:
            machines.stop()
        received = list(smtp.received)

    per_reader = collections.Counter(r.recipients[0] for r in received)
    assert len(per_reader) == READERS  # every digest arrived
    duplicates = sum(count - 1 for count in per_reader.values())
    assert duplicates <= KILLS * CONNECTIONS, duplicates  # at most the messages in flight at each kill
    message_ids: dict[str, set[str]] = collections.defaultdict(set)
    for r in received:
        message_ids[r.recipients[0]].add(r.message["Message-ID"])
    assert all(len(ids) == 1 for ids in message_ids.values())  # a duplicate has the same Message-ID
    # The ledger and the sink agree; the dead workers' journals were read and removed.
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == READERS == len(per_reader)
    assert not JournalEntry.objects.exists()
    assert len(machines.killed) == KILLS
    if backend == "database":
        from django_tasks_db.models import DBTaskResult

        # Task results say what the ledger says: the killed workers' tasks failed, none is left running.
        failed = DBTaskResult.objects.filter(status="FAILED")
        assert {result.worker_ids[-1] for result in failed} == machines.killed
        assert {result.exception_class_path for result in failed} == {"digest.exceptions.SenderDied"}
        assert not DBTaskResult.objects.filter(status="RUNNING").exists()
