"""Benchmark: the digest job on task workers, `--workers K` for each K and each backend, in one run.

    .venv/bin/python bench/workers.py --database-url postgres://postgres@127.0.0.1:5432/digest_workers
                                      [--subscribers 10000] [--workers 1,2,4] [--backends database,rq]
                                      [--sink smtp-sink|aiosmtpd] [--redis rq://127.0.0.1:6379/0]
                                      [--rtt 0,40]

Seeds a fresh PostgreSQL database as bench/run.py does. For each backend and each K: the
ledger is reset, `send_digests` plans and enqueues the send tasks (TASKS_URL), then K
workers (`db_worker --batch`, or `rqworker --burst`) run them and exit when the queue is
empty. It prints messages per second from the enqueueing to the last worker's exit, the
ratio to K = 1, CPU seconds per 1,000 messages (every process but the sink and the
database), duplicates, and checks that the sink and the ledger both count N.

--rtt lists relay round trips in milliseconds (0: loopback). A round trip above 0 puts
bench/latency_proxy.py between the workers and the sink, as bench/run.py --far does, and
each row also shows its rate against the same backend and K at loopback.

The workers share --connections to the relay (128, the default DIGEST_CONNECTIONS of one
process): each has DIGEST_CONNECTIONS = connections / K, as an operator would set it for a
relay that serves so many connections from one sender.
"""

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import NOW, PYTHON, SMTP_SINK, Proxy, Sink, environment_ready, ledger_reset, say, seed  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def workers_run(
    *, backend: str, k: int, rtt: int, connections: int, kind: str, count: int, workdir: Path, env: dict, redis_url: str
) -> dict:
    """Reset the ledger, enqueue one run's send tasks, run them on `k` workers; return the figures."""
    from digest.models import Delivery

    ledger_reset()
    manage = [PYTHON, str(ROOT / "manage.py")]
    if backend == "rq":
        import redis

        redis.Redis.from_url(redis_url.replace("rq://", "redis://")).flushdb()
        worker = [*manage, "rqworker", "default", "--burst", "--worker-class", "rq.worker.SimpleWorker"]
        worker += ["--job-class", "django_tasks_rq.backend.Job"]
    else:
        worker = [*manage, "db_worker", "--batch", "--no-reload", "--no-startup-delay", "--interval", "0.1"]
    with Sink(kind, workdir) as sink, Proxy(sink.port, rtt // 2) if rtt else nullcontext() as proxy:
        run_env = env | {
            "EMAIL_URL": f"smtp://127.0.0.1:{(proxy or sink).port}?timeout=60",
            "TASKS_URL": "database://" if backend == "database" else redis_url,
            "DIGEST_SEND_TASKS": str(max(k, 8)),
            # As an operator would: the relay serves so many connections from us in all,
            # shared by the workers (smtp-sink stops greeting past about 300).
            "DIGEST_CONNECTIONS": str(max(1, connections // k)),
        }
        cpu_before, started = children_cpu(), time.perf_counter()
        subprocess.run(
            [*manage, "send_digests", "--now", NOW.isoformat()], env=run_env, check=True, capture_output=True
        )
        processes = [
            subprocess.Popen(
                worker,
                env=run_env | {"VAR_DIR": str(workdir / f"worker{n}")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(k)
        ]
        for process in processes:
            if process.wait(timeout=3600) != 0:
                raise SystemExit(f"a {backend} worker failed")
        seconds = time.perf_counter() - started
        cpu = children_cpu() - cpu_before
    counted = sink.result
    sent = Delivery.objects.filter(status="sent").count()
    unique = counted["unique_message_ids"]
    return {
        "backend": backend,
        "workers": k,
        "rtt": rtt,
        "rate": count / seconds,
        "cpu_ms_per_message": 1000 * cpu / count,
        "sink": counted["messages"],
        "ledger": sent,
        "duplicates": counted["messages"] - (unique if unique is not None else sent),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL of a database to (re)create")
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--backends", default="database,rq")
    parser.add_argument("--sink", choices=["aiosmtpd", "smtp-sink"], default="smtp-sink" if SMTP_SINK else "aiosmtpd")
    parser.add_argument("--redis", default="rq://127.0.0.1:6379/0", help="the rq:// URL RQ's queue lives at")
    parser.add_argument("--rtt", default="0", help="relay round trips in ms, comma-separated; 0 is loopback")
    parser.add_argument(
        "--connections", type=int, default=128, help="connections to the relay in all, DIGEST_CONNECTIONS = this / K"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="digest-workers-bench-"))
    url, env = environment_ready(args.database_url, workdir)
    seed(args.subscribers, 0)
    rows = []
    for backend in args.backends.split(","):
        for rtt, k in itertools.product(
            (int(v) for v in args.rtt.split(",")), (int(v) for v in args.workers.split(","))
        ):
            say(f"{backend}: {k} workers, {f'{rtt} ms RTT' if rtt else 'loopback'} …")
            rows.append(
                workers_run(
                    backend=backend,
                    k=k,
                    rtt=rtt,
                    connections=args.connections,
                    kind=args.sink,
                    count=args.subscribers,
                    workdir=workdir,
                    env=env,
                    redis_url=args.redis,
                )
            )
    say(f"\nPostgreSQL, {args.subscribers:,} readers, sink {args.sink}, {os.cpu_count()} CPUs")
    say(
        f"{'backend':10} {'RTT ms':>6} {'workers':>7} {'msg/s':>7} {'vs 1':>5} {'vs near':>7} {'CPU ms/msg':>10} {'dups':>5}  checks"
    )
    ok = True
    for row in rows:
        same = [r for r in rows if r["backend"] == row["backend"]]
        one = next((r for r in same if r["rtt"] == row["rtt"] and r["workers"] == 1), row)
        near = next((r for r in same if r["rtt"] == 0 and r["workers"] == row["workers"]), None)
        good = row["sink"] - row["duplicates"] == args.subscribers == row["ledger"]
        ok &= good
        say(
            f"{row['backend']:10} {row['rtt']:>6} {row['workers']:>7} {row['rate']:>7.0f} {row['rate'] / one['rate']:>5.2f} "
            f"{f'{row["rate"] / near["rate"]:.2f}' if near and row['rtt'] else '-':>7} "
            f"{row['cpu_ms_per_message']:>10.2f} {row['duplicates']:>5}  "
            + ("sink=ledger=N" if good else f"SINK {row['sink']} LEDGER {row['ledger']}")
        )
    say("result: " + ("all checks passed" if ok else "CHECKS FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
