"""One measured process of the benchmark: the engine (send_digests end to end) or the ceiling.

  python bench/engine.py engine NOW          digest_run(now=NOW), counting SQL and premailer
  python bench/engine.py ceiling FILE N PORT send FILE's bytes N times over one smtplib connection

Prints one JSON line with the figures. Settings come from the environment (DATABASE_URL,
EMAIL_URL, ...), as for manage.py; with BENCH_PROFILE=FILE the engine runs under cProfile
and writes its statistics to FILE.
"""

import cProfile
import json
import os
import resource
import smtplib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ceiling(path: str, count: int, port: int) -> dict:
    data = Path(path).read_bytes()
    connection = smtplib.SMTP("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    for _ in range(count):
        connection.sendmail("bench@example.com", ["reader@example.com"], data)
    connection.quit()
    seconds = time.perf_counter() - started
    return {"sent": count, "seconds": seconds, "bytes": len(data), "peak_rss_mb": peak_rss_mb()}


class StatementCounter:
    """Django set up; counts the statements run through the default connection while used as a wrapper."""

    def __init__(self):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        import django

        django.setup()
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)


def engine(now_text: str) -> dict:
    counter = StatementCounter()
    from django.db import connection
    from django.utils.dateparse import parse_datetime
    from premailer import Premailer

    from digest.run import digest_run

    calls = 0
    transform = Premailer.transform

    def counted(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        return transform(self, *args, **kwargs)

    Premailer.transform = counted
    profile_path = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        if profiler:
            profiler.enable()
        summary = digest_run(now=parse_datetime(now_text))
        if profiler:
            profiler.disable()
    seconds = time.perf_counter() - started
    if profiler:
        profiler.dump_stats(profile_path)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "connections": summary.connections,
        "connections_at_once": summary.connections_at_once,
        "sent": summary.sent,
        "failed": summary.failed,
        "deferred": summary.deferred,
        "groups": summary.groups_rendered + summary.groups_reused,
        "premailer_calls": calls,
        "queries": counter.queries,
        "seconds": seconds,
        "started": time.time() - seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def plan(now_text: str) -> dict:
    """Schedule and plan everything due at `now` (no sending): seconds, statements, peak RSS."""
    counter = StatementCounter()
    from django.db import connection
    from django.utils.dateparse import parse_datetime

    from digest.planning.due import subscriptions_schedule
    from digest.planning.plan import deliveries_plan

    now = parse_datetime(now_text)
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        subscriptions_schedule(now=now)
        counts = deliveries_plan(now=now)
    return {
        "seconds": time.perf_counter() - started,
        "queries": counter.queries,
        "due": counts["due"],
        "planned": counts["planned"],
        "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "ceiling":
        result = ceiling(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "plan":
        result = plan(sys.argv[2])
    else:
        result = engine(sys.argv[2])
    print(json.dumps(result), flush=True)
