"""Benchmark: 10,000 webhook events to a receiver that is down at first and killed twice, and a worker killed twice.

    .venv/bin/python bench/webhooks.py [--events 10000] [--readers 200]
                                       [--database-url postgres://postgres@127.0.0.1:5432/digest_hooks_bench]

Issue 28's target. Seeds a fresh database (SQLite in a temporary directory by default) with
one endpoint and --events subscription.changed events spread over --readers readers, then
delivers them with hooks.delivery.endpoint_deliver, as the task and the cron job do, to a
receiver in its own process (this file with --receive) that:

  - answers 500 to every event signed in its first 5 minutes (by the webhook-timestamp, the
    delivery's clock, which this benchmark drives: each retry happens at the endpoint's
    retry_at, so the backoff's hours pass in seconds);
  - is killed (SIGKILL from inside, after it has recorded an event and before it answers)
    at its 3,000th and 7,000th accepted event, then started again on the same port;
  - dedupes by webhook-id, as Standard Webhooks asks, keeping its log on disk across kills.

The worker is killed twice as well (SystemExit after a 2xx, before the event is marked
delivered: the 2,000th and 6,000th). It prints the time taken, the requests, failures and
re-sent events, and checks: every event delivered (the outbox and the receiver agree), each
exactly once by event id, in order overall and per reader. Exits non-zero if a check fails.
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PYTHON, environment_ready, free_port, say  # noqa: E402

T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
DOWN_SECONDS = 300
RECEIVER_KILLS = (3000, 7000)  # accepted events (new ids) at which the receiver dies before answering
WORKER_KILLS = (2000, 6000)  # 2xx answers after which the worker dies before marking the event


def receive(port: int, log: Path, start: int, die_at: list[int]) -> None:
    """The receiver: append each request to `log` (status, webhook-id, reader, n); die at the accepted counts given."""
    processed = set()
    if log.exists():
        for line in log.read_text().splitlines():
            status, webhook_id, *_ = line.split()
            if status == "204":
                processed.add(webhook_id)
    out = log.open("a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            webhook_id, stamp = self.headers["webhook-id"], int(self.headers["webhook-timestamp"])
            data = json.loads(body)["data"]
            status = 500 if stamp < start + DOWN_SECONDS else 204
            if status == 204 and webhook_id in processed:
                status = 208  # a repeat: acknowledged, not processed again
            out.write(f"{status} {webhook_id} {data['reader']} {data['n']}\n")
            if status == 204:
                processed.add(webhook_id)
                if len(processed) in die_at:
                    out.flush()
                    os.kill(os.getpid(), signal.SIGKILL)  # recorded, never answered
            self.send_response(200 if status == 208 else status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


class Receiver:
    """The receiver's process: started, found dead, started again on the same port."""

    def __init__(self, port: int, log: Path):
        self.port, self.log, self.process, self.starts = port, log, None, 0

    def start(self) -> None:
        die_at = ",".join(str(n) for n in RECEIVER_KILLS)
        self.process = subprocess.Popen(
            [PYTHON, __file__, "--receive", str(self.port), str(self.log), str(int(T0.timestamp())), die_at]
        )
        self.starts += 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket_to(self.port):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the receiver did not start")

    def dead(self) -> bool:
        return self.process.poll() is not None

    def stop(self) -> None:
        if not self.dead():
            self.process.kill()
        self.process.wait()


def socket_to(port: int):
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--database-url", help="a PostgreSQL database to drop and recreate; default SQLite")
    parser.add_argument("--receive", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        port, log, start, die_at = args.receive
        receive(int(port), Path(log), int(start), [int(n) for n in die_at.split(",") if n])
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="hooks-bench-"))
    os.environ |= {"HOOKS_ALLOW_PRIVATE": "1", "HOOKS_TIMEOUT": "5"}
    url, _ = environment_ready(args.database_url, workdir)

    from django.db import transaction

    from hooks.delivery import endpoint_deliver
    from hooks.http import endpoint_post
    from hooks.models import Endpoint, Event, EventStatus, EventType
    from hooks.outbox import events_record
    from hooks.signing import secret_generate
    from newsletters.models import Newsletter

    say(f"Recording {args.events:,} events in {url.split('@')[-1]} …")
    port = free_port()
    endpoint = Endpoint.objects.create(
        newsletter=Newsletter.objects.create(name="Bench", slug="bench"),
        url=f"http://127.0.0.1:{port}/hooks/digest",
        events=list(EventType.values),
        secret=secret_generate(),
    )
    with transaction.atomic():  # one commit, not one per event
        for n in range(args.events):
            events_record(
                type=EventType.SUBSCRIPTION_CHANGED,
                data={"n": n, "reader": n % args.readers},
                key=f"subscriber:{n % args.readers}",
                now=T0,
                endpoints=[endpoint],
            )
    receiver = Receiver(port, workdir / "received.log")
    receiver.start()
    answered_ok = 0

    def killable(url, **arguments):
        nonlocal answered_ok
        answer = endpoint_post(url, **arguments)
        if answer.ok:
            answered_ok += 1
            if answered_ok in WORKER_KILLS:
                raise SystemExit("worker killed")
        return answer

    say("Delivering …")
    now, runs, worker_kills = T0, 0, 0
    started, cpu = time.monotonic(), time.process_time()
    try:
        while Event.objects.filter(status=EventStatus.PENDING).exists():
            runs += 1
            if runs > 1000:
                raise SystemExit("delivery makes no progress")
            if receiver.dead():
                receiver.start()
            try:
                endpoint_deliver(endpoint_id=endpoint.pk, now=now, post=killable)
            except SystemExit:
                worker_kills += 1
                continue
            now = Endpoint.objects.get(pk=endpoint.pk).retry_at or now
    finally:
        receiver.stop()
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    return report(
        workdir / "received.log",
        args=args,
        seconds=seconds,
        cpu=cpu,
        runs=runs,
        now=now,
        worker_kills=worker_kills,
        receiver_starts=receiver.starts,
    )


def report(
    log: Path, *, args, seconds: float, cpu: float, runs: int, now, worker_kills: int, receiver_starts: int
) -> int:
    from hooks.models import Endpoint, Event, EventStatus

    lines = [line.split() for line in log.read_text().splitlines()]
    requests = len(lines)
    failed = sum(1 for status, *_ in lines if status == "500")
    repeats = sum(1 for status, *_ in lines if status == "208")
    processed = [(webhook_id, int(reader), int(n)) for status, webhook_id, reader, n in lines if status == "204"]
    expected = list(Event.objects.order_by("id").values_list("webhook_id", flat=True))
    pending = Event.objects.exclude(status=EventStatus.DELIVERED).count()
    per_reader: dict[int, list[int]] = {}
    for _, reader, n in processed:
        per_reader.setdefault(reader, []).append(n)
    checks = {
        "every event marked delivered": pending == 0,
        "the receiver processed each event once": len(processed) == len({p[0] for p in processed}) == args.events,
        "in order, overall": [p[0] for p in processed] == expected,
        "in order, per reader": all(ns == sorted(ns) for ns in per_reader.values()),
        "endpoint not paused": Endpoint.objects.filter(paused_at__isnull=False).count() == 0,
    }
    say(f"\n{args.events:,} events, {args.readers} readers, {Event.objects.count():,} in the outbox")
    say(f"Wall time {seconds:.1f} s ({args.events / seconds:,.0f} events/s), this process's CPU {cpu:.1f} s")
    say(
        f"Delivery runs {runs}; simulated time {now - T0}; receiver started {receiver_starts}× "
        f"(killed {receiver_starts - 1}×); worker killed {worker_kills}×"
    )
    say(
        f"Requests {requests:,}: {failed:,} answered 500 (the first {DOWN_SECONDS // 60} minutes), "
        f"{repeats} repeats of an event already processed (deduped by webhook-id: the one in flight at each kill)"
    )
    for name, ok in checks.items():
        say(f"  {'ok ' if ok else 'FAILED'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
