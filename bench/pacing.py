"""Benchmark: pacing per mailbox provider, with one of three providers throttling.

    .venv/bin/python bench/pacing.py [--readers 600] [--latency-ms 20] [--database-url postgres://…/digest_pacing_bench]

Issue 29's target. Seeds a fresh database (SQLite in a temporary directory by default) with
one daily newsletter and --readers readers at each of three providers (gmail.com → google,
outlook.com → microsoft, yahoo.com → yahoo), and starts a relay in its own process (this file
with --sink): an aiosmtpd server that passes back each provider's answers, taking
--latency-ms per message as a distant provider does, and, while throttling is on, answering
"421 4.7.0 Try again later" to every third recipient at yahoo.com. Then, in the same run:

  1. unthrottled: a digest to every reader (digest_run), the baseline rate of each provider;
  2. throttled: the next day's digest, yahoo.com answering 421 to every third message:
     google's and microsoft's rates against their baseline (the target: ≥ 0.8×);
  3. later runs, each after the deferred digests' backoff, yahoo still throttling, until
     every reader has the day's digest.

A provider's rate is its messages accepted by the relay over the time from its first to its
last in that run. It prints the rates and ratios, the runs it took, and checks: the two
other providers ≥ 0.8×, every yahoo reader served in later runs, each reader exactly one
digest per day (0 lost, 0 duplicates by recipient and Message-ID). Exits non-zero if a check fails.
"""

import argparse
import asyncio
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PYTHON, environment_ready, free_port, issue_markdown, say  # noqa: E402

DOMAINS = {"gmail.com": "google", "outlook.com": "microsoft", "yahoo.com": "yahoo"}
THROTTLED = "yahoo.com"
TARGET = 0.8
DAY1 = datetime.datetime(2026, 6, 2, 8, 5, tzinfo=datetime.UTC)
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def sink(port: int, log: Path, flag: Path, latency: float) -> None:
    """The relay: log "time recipient message-id" per accepted message; 421 every third yahoo.com RCPT while `flag` exists."""
    from aiosmtpd.controller import Controller

    out = log.open("a", buffering=1)
    asked = Counter()

    class Providers:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            domain = address.rpartition("@")[2].lower()
            if domain == THROTTLED and flag.exists():
                asked[domain] += 1
                if asked[domain] % 3 == 0:
                    return "421 4.7.0 Try again later, closing connection."
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(latency)  # the provider's own time to take a message
            found = MESSAGE_ID.search(envelope.content)
            message_id = found.group(1).decode() if found else "-"
            for recipient in envelope.rcpt_tos:
                out.write(f"{time.time():.6f} {recipient} {message_id}\n")
            return "250 2.0.0 Ok: queued"

    controller = Controller(Providers(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def seed(*, readers: int) -> None:
    """A daily newsletter (08:00 UTC), `readers` readers at each provider, an issue for the first day."""
    from newsletters.models import Issue, Newsletter, Subscriber, Subscription

    newsletter = Newsletter.objects.create(
        name="Bench Daily", slug="bench", from_email="Bench <bench@example.com>", send_time=datetime.time(8, 0)
    )
    Issue.objects.create(
        newsletter=newsletter,
        title="Day one",
        slug="day-one",
        body=issue_markdown(1),
        status="published",
        publish_at=DAY1 - datetime.timedelta(hours=6),
    )
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n:05}@{domain}", name=f"Reader {n}", status="active", confirmed_at=DAY1)
        for n in range(readers)
        for domain in DOMAINS
    )
    if not subscribers[0].pk:
        subscribers = list(Subscriber.objects.all())
    Subscription.objects.bulk_create(
        Subscription(subscriber=s, newsletter=newsletter, frequency="daily", status="active") for s in subscribers
    )
    Subscription.objects.update(created_at=DAY1 - datetime.timedelta(days=2))


def log_read(log: Path, start: int) -> tuple[list[tuple[float, str, str]], int]:
    """The relay's log lines from line `start` on, and the next start."""
    lines = log.read_text().splitlines()
    return [(float(t), r, m) for t, r, m in (line.split() for line in lines[start:])], len(lines)


def rates(accepted: list[tuple[float, str, str]]) -> dict[str, tuple[int, float]]:
    """Messages and messages a second per provider (first to last accepted)."""
    per: dict[str, list[float]] = {}
    for moment, recipient, _ in accepted:
        per.setdefault(DOMAINS[recipient.rpartition("@")[2]], []).append(moment)
    return {name: (len(times), len(times) / max(max(times) - min(times), 1e-3)) for name, times in per.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=600, help="readers at each of the three providers")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="each provider's time to take a message")
    parser.add_argument("--database-url", help="a PostgreSQL database to drop and recreate; default SQLite")
    parser.add_argument("--sink", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        port, log, flag, latency = args.sink
        sink(int(port), Path(log), Path(flag), float(latency))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="pacing-bench-"))
    port, log, flag = free_port(), workdir / "relay.log", workdir / "throttling"
    log.touch()
    os.environ |= {"EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    url, _ = environment_ready(args.database_url, workdir)
    relay = subprocess.Popen([PYTHON, __file__, "--sink", str(port), str(log), str(flag), str(args.latency_ms / 1000)])
    try:
        return measure(args, url=url, log=log, flag=flag, port=port)
    finally:
        relay.kill()
        relay.wait()


def measure(args, *, url: str, log: Path, flag: Path, port: int) -> int:
    import socket

    from digest.models import Delivery, DeliveryStatus
    from digest.run import digest_run
    from newsletters.models import Issue, Newsletter

    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the relay did not start") from None
            time.sleep(0.1)
    say(f"Seeding {args.readers:,} readers at each of {', '.join(DOMAINS)} in {url.split('@')[-1]} …")
    seed(readers=args.readers)
    everyone = args.readers * len(DOMAINS)

    say("Run 1, unthrottled …")
    summary = digest_run(now=DAY1)
    first, position = log_read(log, 0)
    baseline = rates(first)
    say(f"  sent {summary.sent:,}, deferred {summary.deferred:,}")

    newsletter = Newsletter.objects.get()
    day2 = DAY1 + datetime.timedelta(days=1)
    Issue.objects.create(
        newsletter=newsletter,
        title="Day two",
        slug="day-two",
        body=issue_markdown(2),
        status="published",
        publish_at=day2 - datetime.timedelta(hours=6),
    )
    flag.touch()
    say(f"Run 2, {THROTTLED} answering 421 to every third message …")
    summary = digest_run(now=day2)
    second, position = log_read(log, position)
    throttled = rates(second)
    say(f"  sent {summary.sent:,}, deferred {summary.deferred:,}")
    moment, later = day2, 0
    waiting = Delivery.objects.filter(window_end__gt=DAY1).exclude(status=DeliveryStatus.SENT)
    while waiting.exists() and later < 500:
        later += 1
        # Past the latest deferred digest's next attempt: the cron job's next run after it.
        moment = max(moment, *waiting.exclude(next_attempt_at=None).values_list("next_attempt_at", flat=True))
        moment += datetime.timedelta(minutes=1)
        digest_run(now=moment)
    rest, _ = log_read(log, position)
    failed = Delivery.objects.filter(status=DeliveryStatus.FAILED).count()
    return report(
        args,
        baseline=baseline,
        throttled=throttled,
        days=[first, second + rest],
        everyone=everyone,
        later=later,
        late=sum(1 for _, r, _ in rest if r.endswith(THROTTLED)),
        failed=failed,
        span=moment - day2,
    )


def report(args, *, baseline, throttled, days, everyone, later, late, failed, span) -> int:
    say(f"\n{args.readers:,} readers at each provider, {args.latency_ms:g} ms per message at the relay")
    say("| Provider | Unthrottled msg/s | With yahoo throttling msg/s | Ratio |")
    say("|---|---|---|---|")
    ratios = {}
    for name in DOMAINS.values():
        (_, before), (sent, after) = baseline.get(name, (0, 0.0)), throttled.get(name, (0, 0.0))
        ratios[name] = after / before if before else 0.0
        say(f"| {name} | {before:,.0f} | {after:,.0f} ({sent:,} in run 2) | {ratios[name]:.2f} |")
    duplicates = lost = 0
    for accepted in days:
        by_recipient = Counter(recipient for _, recipient, _ in accepted)
        duplicates += sum(
            n - 1 for n in by_recipient.values() if n > 1
        )  # a day's digest twice, whatever its Message-ID
        lost += everyone - len(by_recipient)
    say(
        f"\nLater runs for the deferred: {later}, over {span} of the engine's clock; {late:,} yahoo readers served then."
    )
    say(f"Lost {lost}, duplicates {duplicates}, failed {failed}.")
    checks = {
        f"google and microsoft ≥ {TARGET}× their unthrottled rate": all(
            ratios[name] >= TARGET for name in ("google", "microsoft")
        ),
        "yahoo's deferred readers all arrived in later runs": late > 0 and lost == 0,
        "0 lost, 0 duplicates, 0 failed": lost == 0 and duplicates == 0 and failed == 0,
    }
    for name, ok in checks.items():
        say(f"  {'ok    ' if ok else 'FAILED'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
