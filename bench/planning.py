"""Benchmark: planning a million readers on PostgreSQL, against 100,000 in the same run.

    .venv/bin/python bench/planning.py --database-url postgres://postgres@127.0.0.1:5432/digest_plan
                                       [--subscribers 1000000] [--baseline 100000] [--send]

Seeds a fresh PostgreSQL database with set-based SQL (generate_series: the seeding is not
what is measured) in the steady state a live list is in: readers in six time zones and
three frequencies, daily and weekly ones with their next due time already stored, a third
with an earlier digest behind them. Then, for the baseline and the full size, it runs
planning alone (schedule + plan: every due subscription becomes a pending Delivery) in a
fresh process and prints seconds, statements per 100 readers and peak RSS, and checks the
targets: planning ≤ 60 s, peak RSS at the full size ≤ 1.25× the baseline's, ≤ 5
statements per 100 readers.

With --send, each size is then reset to the same steady state and the whole digest job
runs in one fresh process (send_digests' run: schedule, plan, render, send, record) into
postfix's smtp-sink, pinned apart as bench/run.py pins them; it prints messages per
second, statements per 100 readers and peak RSS, and checks that the sink and the ledger
both count every due reader once and that peak RSS stays within 1.25× the baseline's.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import NOW, PYTHON, SMTP_SINK, ZONES, Sink, environment_ready, newsletter_seed, pinned, run_json, say  # noqa: E402


def seed_upto(count: int, *, first: bool) -> None:
    """Add readers until there are `count`, with set-based SQL; reset every digest planned so far."""
    from django.db import connection

    from newsletters.models import Newsletter

    if first:
        newsletter_seed()
    newsletter_id = Newsletter.objects.get(slug="bench").id
    created = NOW - datetime.timedelta(days=8)
    earlier = NOW - datetime.timedelta(days=1, hours=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM newsletters_subscriber")
        have = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO newsletters_subscriber (email, name, timezone, status, confirmed_at, created_at,
                                                consecutive_failures)
            SELECT 'reader' || lpad(n::text, 7, '0') || '@example.com', 'Reader ' || n,
                   (%s::text[])[n %% 6 + 1], 'active', %s, %s, 0
            FROM generate_series(%s, %s - 1) AS n
            """,
            [ZONES, created, created, have, count],
        )
        cursor.execute(
            """
            INSERT INTO newsletters_subscription (subscriber_id, newsletter_id, frequency, status, created_at,
                                                  updated_at)
            SELECT r.id, %s, (ARRAY['immediate', 'daily', 'weekly'])[(r.id / 6) %% 3 + 1], 'active', %s, %s
            FROM newsletters_subscriber r
            WHERE NOT EXISTS (SELECT 1 FROM newsletters_subscription s WHERE s.subscriber_id = r.id)
            """,
            [newsletter_id, created, created],
        )
        cursor.execute("TRUNCATE digest_delivery, digest_rendering, digest_journalentry CASCADE")
        # Steady state: daily and weekly ones are due now (their next due time stored), a
        # third had a digest yesterday; immediate ones wait for the scheduler to wake them.
        cursor.execute(
            """
            UPDATE newsletters_subscription
            SET next_due_at = CASE WHEN frequency = 'immediate' THEN NULL ELSE %s END,
                "cursor" = CASE WHEN id %% 3 = 0 THEN %s ELSE NULL END
            """,
            [NOW - datetime.timedelta(minutes=30), earlier],
        )
        cursor.execute("VACUUM ANALYZE")


def plan_measured(env: dict) -> dict:
    command = [PYTHON, str(ROOT / "bench" / "engine.py"), "plan", NOW.isoformat()]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"planning failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def send_measured(env: dict, workdir: Path) -> dict:
    """The digest job end to end into smtp-sink, in a fresh process; its figures and what sink and ledger counted."""
    from digest.models import Delivery

    command = [PYTHON, str(ROOT / "bench" / "engine.py"), "engine", NOW.isoformat()]
    with Sink("smtp-sink", workdir) as sink:
        run = run_json(pinned(0, command), env | {"EMAIL_URL": f"smtp://127.0.0.1:{sink.port}?timeout=60"})
    return run | {"sink": sink.result["messages"], "ledger": Delivery.objects.filter(status="sent").count()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL of a database to (re)create")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=100_000)
    parser.add_argument("--send", action="store_true", help="also plan and send every digest into smtp-sink")
    args = parser.parse_args()
    if args.send and not SMTP_SINK:
        raise SystemExit("--send needs postfix's smtp-sink: `make postfix` installs it")
    workdir = Path(f"/tmp/digest-plan-bench-{os.getpid()}")
    url, env = environment_ready(args.database_url, workdir)
    rows, sends = [], []
    for size in (args.baseline, args.subscribers):
        started = time.perf_counter()
        seed_upto(size, first=not rows)
        say(f"Seeded {size:,} readers in {time.perf_counter() - started:.1f}s; planning …")
        rows.append({"readers": size, **plan_measured(env)})
        if args.send:
            seed_upto(size, first=False)  # the same steady state again: nothing planned yet
            say(f"Planning and sending {size:,} digests into smtp-sink …")
            sends.append({"readers": size, "due": rows[-1]["due"], **send_measured(env, workdir)})
            sends[-1]["counted"] = sends[-1]["sink"] == sends[-1]["due"] == sends[-1]["ledger"] == sends[-1]["sent"]
    say(f"\nPostgreSQL planning (schedule + plan, no sending), {os.cpu_count()} CPUs")
    say(f"{'readers':>10} {'due':>10} {'planned':>10} {'seconds':>8} {'SQL/100':>8} {'peak RSS MB':>12}")
    for row in rows:
        say(
            f"{row['readers']:>10,} {row['due']:>10,} {row['planned']:>10,} {row['seconds']:>8.1f} "
            f"{100 * row['queries'] / row['readers']:>8.3f} {row['peak_rss_mb']:>12.1f}"
        )
    base, full = rows
    ratio = full["peak_rss_mb"] / base["peak_rss_mb"]
    checks = {
        "planning ≤ 60 s": full["seconds"] <= 60,
        f"peak RSS ≤ 1.25× the baseline ({ratio:.2f}×)": ratio <= 1.25,
        "SQL ≤ 5 per 100 readers": all(100 * r["queries"] / r["readers"] <= 5 for r in rows),
        "every due reader planned": all(r["due"] == r["readers"] and r["planned"] == r["readers"] for r in rows),
    }
    if sends:
        say("\nPostgreSQL, plan + send (the whole digest job, one process) into smtp-sink")
        say(f"{'readers':>10} {'sent':>10} {'seconds':>8} {'msg/s':>7} {'SQL/100':>8} {'peak RSS MB':>12}  checks")
        for row in sends:
            say(
                f"{row['readers']:>10,} {row['sent']:>10,} {row['seconds']:>8.1f} {row['sent'] / row['seconds']:>7.0f} "
                f"{100 * row['queries'] / row['readers']:>8.3f} {row['peak_rss_mb']:>12.1f}  "
                + (
                    "sink=ledger=due"
                    if row["counted"]
                    else f"SINK {row['sink']:,} LEDGER {row['ledger']:,} DUE {row['due']:,}"
                )
            )
        send_ratio = sends[1]["peak_rss_mb"] / sends[0]["peak_rss_mb"]
        checks |= {
            "sending: every due reader sent once (sink = ledger = due)": all(r["counted"] for r in sends),
            f"sending: peak RSS ≤ 1.25× the baseline ({send_ratio:.2f}×)": send_ratio <= 1.25,
            "sending: SQL ≤ 5 per 100 readers": all(100 * r["queries"] / r["readers"] <= 5 for r in sends),
        }
    for check, ok in checks.items():
        say(f"{'ok  ' if ok else 'FAIL'} {check}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
