"""Web benchmark: the reader pages under load from `make serve` (gunicorn, DEBUG=0) on PostgreSQL.

    make bench-web [BENCH_WEB_ARGS="--workers 4 --connections 32 --duration 10 --one-click 10000"]

Seeds a fresh PostgreSQL database (--database-url; dropped and recreated) with three
newsletters of 30 ~5 KB issues each and --one-click readers, then:

  server time: each reader page rendered in this process (Django's test client, the same
               settings), CPU milliseconds per request, median of 5 rounds;
  load:        `make serve` on a free loopback port with a Redis cache (--cache-url; its
               database is flushed), loaded by wrk (bench/web.lua) with --connections
               clients: /healthz first (the baseline: one query, no template), then home,
               subscribe page, subscribe POST (one client address, so the rate limit answers
               429 after NEWSLETTERS_RATE_PER_CLIENT requests: counted apart, not as errors),
               --one-click distinct one-click unsubscribe POSTs, archive, issue, feed and
               the counting link redirect /l/<token>/ (300 links of 30 issues, in turn);

and prints requests/s, the ratio to the baseline, p50/p99 latency, 5xx and other errors,
then checks that every one of the one-click readers is unsubscribed and that every redirect
was counted. Each run is bounded by
--duration seconds and by a count. Exits non-zero if a check fails: a 5xx, a socket
error, a one-click reader still subscribed, or a redirect not counted.
"""

import argparse
import datetime
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from run import ROOT, Sink, database_prepare, free_port, issue_markdown, say

WRK = shutil.which("wrk")
LUA = Path(__file__).with_name("web.lua")
NOW = datetime.datetime.now(datetime.UTC)
TARGETS = {"home": 5.0, "subscribe page": 5.0}  # server ms; every other page: 10 ms
# Issue 29's target for the counting redirect under this load.
REDIRECT_RPS, REDIRECT_P99_MS = 1000, 50
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def seed(*, readers: int) -> None:
    """Three newsletters with 30 published issues each; `readers` readers subscribed to the first."""
    from newsletters.models import Issue, Newsletter, Subscriber, Subscription

    for n, name in enumerate(["Bench Weekly", "Ops Bulletin", "Release Notes"]):
        newsletter = Newsletter.objects.create(
            name=name,
            slug=name.lower().replace(" ", "-"),
            description=f"{name}: what changed and why.",
            from_email="Bench <bench@example.com>",
            send_time=datetime.time(8, 0),
        )
        Issue.objects.bulk_create(
            Issue(
                newsletter=newsletter,
                title=f"{name}, part {i + 1}",
                slug=f"part-{i + 1}",
                body=issue_markdown(i + 1),
                status="published",
                publish_at=NOW - datetime.timedelta(days=30 - i, hours=n),
            )
            for i in range(30)
        )
    first = Newsletter.objects.order_by("pk").first()
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n:06}@example.com", name=f"Reader {n}", status="active", confirmed_at=NOW)
        for n in range(readers)
    )
    Subscription.objects.bulk_create(
        Subscription(subscriber=s, newsletter=first, frequency="daily", status="active") for s in subscribers
    )


def link_paths(*, links_per_issue: int = 10) -> list[str]:
    """The counting redirect's paths for the first newsletter's issues, `links_per_issue` links each."""
    from digest.link_tokens import link_token
    from newsletters.models import Issue

    issues = Issue.objects.filter(newsletter__slug="bench-weekly").order_by("pk").values_list("pk", flat=True)
    return [
        f"/l/{link_token(issue_id=pk, url=f'https://example.org/read/{pk}/{n}')}/"
        for n in range(links_per_issue)
        for pk in issues
    ]


def links_counted() -> int:
    """Every follow the redirect has counted so far, people's and scanners'."""
    from django.db.models import Sum

    from digest.models import LinkCount

    totals = LinkCount.objects.aggregate(people=Sum("clicks"), scanners=Sum("scanner_clicks"))
    return (totals["people"] or 0) + (totals["scanners"] or 0)


def server_times(urls: dict[str, str], one_click: list[str], links: list[str]) -> dict[str, float]:
    """CPU ms per request of each page in this process, median of 5 rounds of 40."""
    from django.core.cache import cache
    from django.test import Client

    client = Client(headers={"User-Agent": BROWSER})
    times = {}
    for name, url in urls.items():
        client.get(url)
        rounds = []
        for _ in range(5):
            start = time.process_time()
            for _ in range(40):
                assert client.get(url).status_code == 200, url
            rounds.append((time.process_time() - start) / 40 * 1000)
        times[name] = statistics.median(rounds)
    rounds = []
    for chunk in range(5):
        start = time.process_time()
        for path in one_click[chunk * 40 : chunk * 40 + 40]:
            response = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
            assert response.status_code == 200
        rounds.append((time.process_time() - start) / 40 * 1000)
    times["one-click POST"] = statistics.median(rounds)
    rounds = []
    for chunk in range(5):
        start = time.process_time()
        for path in links[chunk * 40 : chunk * 40 + 40]:
            assert client.get(path).status_code == 302, path
        rounds.append((time.process_time() - start) / 40 * 1000)
    times["link redirect"] = statistics.median(rounds)
    cache.clear()
    return times


def wrk(base: str, name: str, *, path: str, args, workdir: Path, limit: int, duration: int, **request) -> dict:
    """One wrk run of one kind of request; its JSON summary with requests/s added."""
    out = workdir / f"{name.replace(' ', '-')}.json"
    env = os.environ | {
        "WRK_METHOD": request.get("method", "GET"),
        "WRK_BODY": request.get("body", ""),
        "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in request.get("headers", {}).items()),
        "WRK_PATHS": str(request.get("paths", "")),
        "WRK_LIMIT": str(limit),
        "WRK_OUT": str(out),
    }
    # One wrk thread (bench/web.lua counts per thread) drives all connections: a few % of a CPU.
    command = [WRK, "-t1", f"-c{args.connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(LUA)]
    subprocess.run([*command, base + path], env=env, check=True, capture_output=True, timeout=duration + 60)
    result = json.loads(out.read_text())
    result["name"] = name
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants (gunicorn and its workers).

    A worker that exits (gunicorn recycles each after about max_requests) takes its CPU time
    out of the tree: its parent's cutime/cstime (the CPU of children it reaped) keeps it."""
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = sum(int(tick) for tick in fields[11:15])  # utime, stime, cutime, cstime
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def csrf_pair(base: str) -> tuple[str, str]:
    """A CSRF cookie and the matching form token, as a browser gets them from the subscribe page."""
    with urllib.request.urlopen(base + "/subscribe/", timeout=10) as response:
        cookie = response.headers["Set-Cookie"].split(";")[0]
        page = response.read().decode()
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    return cookie, token


def wait_healthy(base: str, server: subprocess.Popen) -> None:
    """Wait until /healthz answers 200 (migrations and collectstatic run first), at most 120 s."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"make serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer /healthz within 120 s")


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.machine(),
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    wrk_version = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.split()[1]
    import gunicorn

    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"PostgreSQL {postgres}, gunicorn {gunicorn.__version__}, wrk {wrk_version}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/digest_web_bench")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent wrk clients")
    parser.add_argument("--duration", type=int, default=10, help="seconds at most per run")
    parser.add_argument("--requests", type=int, default=20_000, help="responses at most per page run")
    parser.add_argument("--one-click", type=int, default=10_000, help="distinct one-click unsubscribes")
    parser.add_argument("--one-click-duration", type=int, default=300, help="seconds at most for the one-click run")
    parser.add_argument(
        "--runs", help="only these load runs, comma-separated names (e.g. 'one-click POST'); the baseline always runs"
    )
    parser.add_argument("--worker-threads", type=int, default=1, help="threads per gunicorn worker (gthread if > 1)")
    args = parser.parse_args()
    if not WRK:
        raise SystemExit("wrk is missing: `make wrk` installs it (Debian's wrk)")
    if not args.database_url.startswith("postgres"):
        raise SystemExit("--database-url must be a PostgreSQL URL: the benchmark measures production's database")

    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sink = Sink("aiosmtpd", workdir)  # subscribe POSTs mail confirmations; the deploy check refuses dummy://
    env = {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "SITE_URL": base,
        "DATABASE_URL": database_prepare(args.database_url, workdir),
        "CACHE_URL": args.cache_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
        "VAR_DIR": str(workdir),
        "PORT": str(port),
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_CMD_ARGS": f"--threads {args.worker_threads}" if args.worker_threads > 1 else "",
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    from newsletters.models import Newsletter, Subscription, SubscriptionStatus
    from newsletters.tokens import preferences_url, unsubscribe_url

    call_command("migrate", verbosity=0)
    cache.clear()
    say(f"Seeding 3 newsletters × 30 issues and {args.one_click:,} readers…")
    seed(readers=args.one_click + 200)
    readers = list(Subscription.objects.order_by("pk").values_list("pk", "subscriber_id"))
    one_click = [unsubscribe_url(pk).removeprefix(base) for pk, _ in readers]
    pages = {
        "home": "/",
        "subscribe page": "/subscribe/",
        "archive": "/n/bench-weekly/",
        "issue": "/n/bench-weekly/part-30/",
        "feed": "/n/bench-weekly/feed/",
        "preferences": preferences_url(readers[-1][1]).removeprefix(base),
        "unsubscribe page": one_click[-1],
    }
    # The in-process measurement unsubscribes the last 200 readers; the load run takes the rest.
    links = link_paths()
    times = server_times(pages, one_click[-200:], links)
    paths = workdir / "one-click.txt"
    paths.write_text("\n".join(one_click[: args.one_click]) + "\n")
    link_file = workdir / "links.txt"
    link_file.write_text("\n".join(links) + "\n")

    say(f"Starting `make serve` on {base} with {args.workers} workers…")
    sink.__enter__()
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "serve.log", "w"),
        start_new_session=True,
    )
    results = []
    load = os.getloadavg()[0]
    try:
        wait_healthy(base, server)
        cookie, token = csrf_pair(base)
        # What a browser sends: every newsletter's frequency select, one box ticked.
        newsletters = list(Newsletter.objects.order_by("pk").values_list("pk", flat=True))
        subscribe_body = (
            f"csrfmiddlewaretoken={token}&email=bench%40example.com&name=Bench&timezone=Europe%2FParis"
            f"&nl_{newsletters[0]}=on" + "".join(f"&freq_{pk}=daily" for pk in newsletters)
        )
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        runs = [
            ("healthz (baseline)", "/healthz", {}),
            ("home", "/", {}),
            ("subscribe page", "/subscribe/", {}),
            (
                "subscribe POST",
                "/subscribe/",
                {"method": "POST", "body": subscribe_body, "headers": form | {"Cookie": cookie}},
            ),
            (
                "one-click POST",
                "/",
                {"method": "POST", "body": "List-Unsubscribe=One-Click", "headers": form, "paths": paths},
            ),
            ("archive", pages["archive"], {}),
            ("issue", pages["issue"], {}),
            ("feed", pages["feed"], {}),
            # A reader's browser: a person's follow, not a scanner's (both are counted, apart).
            ("link redirect", "/", {"paths": link_file, "headers": {"User-Agent": BROWSER}}),
        ]
        if args.runs:
            wanted = {"healthz (baseline)", *(name.strip() for name in args.runs.split(","))}
            if unknown := wanted - {name for name, _, _ in runs}:
                raise SystemExit(f"--runs: no run named {', '.join(sorted(unknown))}")
            runs = [run for run in runs if run[0] in wanted]
        for name, path, request in runs:
            bounds = (
                {"limit": args.one_click, "duration": args.one_click_duration}
                if name == "one-click POST"
                else {"limit": args.requests, "duration": args.duration}
            )
            if request.get("method", "GET") == "GET":
                # Unmeasured: each worker imports, compiles templates and fills its caches once.
                wrk(
                    base,
                    "warm-up",
                    path=path,
                    args=args,
                    workdir=workdir,
                    limit=50 * args.workers,
                    duration=30,
                    **request,
                )
            counted = links_counted()
            before = tree_cpu_seconds(server.pid)
            results.append(wrk(base, name, path=path, args=args, workdir=workdir, **bounds, **request))
            results[-1]["cpu_ms"] = (tree_cpu_seconds(server.pid) - before) * 1000 / max(results[-1]["requests"], 1)
            results[-1]["counted"] = links_counted() - counted
            say(f"  {name}: {results[-1]['rps']:,.0f} requests/s")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        sink.__exit__(None, None, None)
    load = max(load, os.getloadavg()[0])

    unsubscribed = (
        Subscription.objects.filter(
            pk__in=[pk for pk, _ in readers[: args.one_click]], status=SubscriptionStatus.UNSUBSCRIBED
        ).count()
        if any(r["name"] == "one-click POST" for r in results)
        else None
    )
    say(f"Confirmation mails the SMTP sink received: {sink.result['messages']}.")
    return report(results, times, args=args, unsubscribed=unsubscribed, load=load)


def report(results: list[dict], times: dict[str, float], *, args, unsubscribed: int | None, load: float) -> int:
    say(f"\nMachine: {machine()}; load average up to {load:.1f} during the run.")
    kind = f"gthread workers × {args.worker_threads} threads" if args.worker_threads > 1 else "sync workers"
    say(f"gunicorn: {args.workers} {kind}; wrk: 1 thread, {args.connections} connections.\n")
    say("| Page | Server ms (CPU) | Target |")
    say("|---|---|---|")
    failed = []
    for name, ms in times.items():
        target = TARGETS.get(name, 10.0)
        say(f"| {name} | {ms:.2f} | ≤ {target:g} ms{'' if ms <= target else ' **missed**'} |")
    baseline = results[0]["rps"]
    say(
        "\n| Run | Requests | Requests/s | × healthz | p50 ms | p99 ms | gunicorn CPU ms/request "
        "| 2xx/3xx | 429 | 5xx | Socket errors (timeouts) |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        statuses = {int(k): v for k, v in r["statuses"].items()}
        ok = sum(v for k, v in statuses.items() if k < 400)
        limited = statuses.get(429, 0)
        server_errors = sum(v for k, v in statuses.items() if k >= 500)
        socket_errors = sum(r["errors"].values())
        broken = socket_errors - r["errors"]["timeout"]  # a timeout is a client that waited 5 s: slow, not broken
        other = r["requests"] - ok - limited - server_errors
        say(
            f"| {r['name']} | {r['requests']:,} | {r['rps']:,.0f} | {r['rps'] / baseline:.2f} | "
            f"{r['p50_us'] / 1000:.1f} | {r['p99_us'] / 1000:.1f} | {r['cpu_ms']:.2f} | {ok:,}{f' (+{other} other)' if other else ''} | "
            f"{limited:,} | {server_errors} | {socket_errors} ({r['errors']['timeout']}) |"
        )
        if server_errors or broken or other:
            failed.append(f"{r['name']}: {server_errors} 5xx, {broken} broken connections, {other} other answers")
        if r["name"] == "link redirect":
            say(
                f"\nLink redirect: {r['rps']:,.0f} requests/s (target ≥ {REDIRECT_RPS:,}), p99 {r['p99_us'] / 1000:.1f} ms "
                f"(target < {REDIRECT_P99_MS} ms); {r['counted']:,} follows counted for {ok:,} redirects."
            )
            if r["counted"] != ok:
                failed.append(f"link redirect: {ok - r['counted']} redirects not counted")
    if unsubscribed is not None:
        say(f"\nOne-click readers unsubscribed afterwards: {unsubscribed:,} of {args.one_click:,}.")
        if unsubscribed != args.one_click:
            failed.append(f"{args.one_click - unsubscribed} one-click readers are still subscribed")
    for line in failed:
        say(f"FAILED: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
