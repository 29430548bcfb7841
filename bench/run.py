"""Benchmark: the digest engine against the one-connection SMTP ceiling, on the same sink, in one run.

    .venv/bin/python bench/run.py [--subscribers 10000] [--database-url postgres://…/digest_bench]
                                  [--sink aiosmtpd|smtp-sink|all] [--processes K] [--attachment-kb 0]
                                  [--profile] [--far] [--verp] [--dkim] [--imported]

Seeds a fresh database (SQLite in a temporary directory unless --database-url), starts
an SMTP sink in its own process, and for each sink measures
  ceiling: stdlib smtplib sending N prebuilt messages of digest size over one connection;
  engine:  send_digests end to end (plan, claim, render per group, send, record) with one
           process, and with --processes K at once (PostgreSQL) against that baseline;
  limit:   postfix's C load generator smtp-source into smtp-sink, same size and sessions;
then prints messages per second, the engine/ceiling ratio, the engine's share of the limit, premailer calls against
groups, SQL queries per 100 recipients, peak RSS and duplicates, and checks that the sink
counted exactly N messages and the ledger shows N sent. Processes are pinned to CPUs with
taskset where it exists: the ceiling and a single engine on CPU 0, the sink on CPU 1 (K
engines are left to the scheduler). --profile adds one unmeasured engine run under
cProfile and prints its hot path. --verp compares, in the same run and on each sink, the
engine without and with DIGEST_BOUNCE_ADDRESS (a signed VERP envelope sender per
message), alternating two runs of each, and times verp_sender() alone. --dkim measures
DKIM signing instead: the CPU time per message of building a reader's bytes unsigned and
signed (and dkimpy's, for reference), then the engine end to end without and with
signing, on the same sink in the same run. --imported then runs the engine once more on
readers who were imported one after another (each at its own instant, as
`import_subscribers --confirmed` makes them) two and a half days before the run, every run
since missed: the case where new readers' first windows must still share groups.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
NOW = datetime.datetime(2026, 6, 8, 9, 0, tzinfo=datetime.UTC)  # a Monday
ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Helsinki", "Asia/Kolkata", "Africa/Lagos"]
FREQUENCIES = ["immediate", "daily", "weekly"]
SMTP_SINK = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None)
# postfix's C load generator: what this machine can push through smtp-sink, the limit row.
SMTP_SOURCE = shutil.which("smtp-source") or (
    "/usr/sbin/smtp-source" if Path("/usr/sbin/smtp-source").exists() else None
)
TASKSET = shutil.which("taskset") if (os.cpu_count() or 1) > 1 else None


def say(message: str) -> None:
    print(message, flush=True)


def pinned(cpu: int, command: list[str]) -> list[str]:
    return [TASKSET, "-c", str(cpu), *command] if TASKSET else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the sink exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # a readiness probe of a server we just started
    raise SystemExit(f"the sink did not listen on {port}")


class Sink:
    """An SMTP sink process: aiosmtpd (counts Message-IDs too) or postfix's smtp-sink."""

    def __init__(self, kind: str, workdir: Path, *, tls: tuple[str, str] | None = None):
        self.kind, self.workdir, self.port, self.tls = kind, workdir, free_port(), tls

    def __enter__(self):
        self.stats = self.workdir / f"sink-{self.port}.json"
        if self.kind == "aiosmtpd":
            command = [PYTHON, str(ROOT / "bench" / "sink.py"), str(self.port), str(self.stats), *(self.tls or ())]
        else:
            command = [SMTP_SINK, "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "256"]
        # smtp-sink -c writes a counter line per message: to a file, since an unread pipe fills
        # after a few thousand messages and then blocks the sink mid-connection.
        self.log = self.workdir / f"sink-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(pinned(1, command), stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process)
        return self

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        if self.kind == "aiosmtpd":
            self.result = json.loads(self.stats.read_text())
        else:
            out = self.log.read_bytes()[-4096:].decode(errors="replace")
            counts = [int(part.split("=")[1]) for part in out.replace("\r", " ").split() if part.startswith("mesg=")]
            self.result = {"messages": counts[-1] if counts else 0, "unique_message_ids": None}


class Proxy:
    """bench/latency_proxy.py in its own process: `one_way_ms` of latency each way in front of a sink."""

    def __init__(self, target_port: int, one_way_ms: int):
        self.target_port, self.one_way_ms, self.port = target_port, one_way_ms, free_port()

    def __enter__(self):
        command = [PYTHON, str(ROOT / "bench" / "latency_proxy.py"), str(self.port), str(self.target_port)]
        # Not pinned: pinned beside the sink, it took the CPU a Python sink needed (with
        # STARTTLS, the far rows measured the proxy and the sink sharing one CPU while the
        # engine's CPU stood 60% idle); the scheduler gives it whichever CPU is free.
        self.process = subprocess.Popen([*command, str(self.one_way_ms)], stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)
        return self

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def far(kind: str, *, count: int, workdir: Path, env: dict) -> list[dict]:
    """The engine with default settings near (loopback), at 20 and 80 ms RTT, and with STARTTLS at 20 ms."""
    from digest.models import Delivery
    from tests.smtp import self_signed_certificate

    cert = self_signed_certificate(workdir)
    cases = [(kind, 0, None), (kind, 10, None), (kind, 40, None), ("aiosmtpd", 0, cert), ("aiosmtpd", 10, cert)]
    rows = []
    for sink_kind, one_way, tls in cases:
        ledger_reset()
        label = f"{sink_kind}{' +STARTTLS' if tls else ''}, " + (f"{2 * one_way} ms RTT" if one_way else "loopback")
        say(f"  {label} …")
        with Sink(sink_kind, workdir, tls=tls) as sink:
            proxy = Proxy(sink.port, one_way) if one_way else None
            port = proxy.__enter__().port if proxy else sink.port
            try:
                url = f"smtp://127.0.0.1:{port}?timeout=60" + ("&tls=1" if tls else "")
                engine_env = env | {"EMAIL_URL": url} | ({"SSL_CERT_FILE": tls[0]} if tls else {})
                command = [PYTHON, str(ROOT / "bench" / "engine.py"), "engine", NOW.isoformat()]
                run = run_json(pinned(0, command), engine_env)
            finally:
                if proxy:
                    proxy.__exit__()
        ledger_sent = Delivery.objects.filter(status="sent").count()
        unique = sink.result["unique_message_ids"]
        near = next((r for r in rows if r["sink"] == sink_kind and r["tls"] == bool(tls) and not r["rtt_ms"]), None)
        rate = count / run["seconds"]
        rows.append(
            {
                "sink": sink_kind,
                "tls": bool(tls),
                "rtt_ms": 2 * one_way,
                "label": label,
                "rate": rate,
                "vs_near": rate / near["rate"] if near else None,
                "cpu_per_1000": 1000 * run["cpu_seconds"] / count,
                "connections": run["connections"],
                "connections_at_once": run["connections_at_once"],
                "sink_count": sink.result["messages"],
                "ledger_sent": ledger_sent,
                "duplicates": sink.result["messages"] - (unique if unique is not None else ledger_sent),
            }
        )
    return rows


def far_report(rows: list[dict], *, count: int, database: str) -> bool:
    say("")
    say(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {database}, {count} readers"
    )
    say("Far relays: the engine with default settings; latency added by bench/latency_proxy.py")
    say(f"{'relay':34} {'msg/s':>7} {'vs near':>8} {'CPU s/1000':>10} {'conns':>6} {'dups':>5}  checks")
    ok = True
    for r in rows:
        checks = [
            "sink=N" if r["sink_count"] == count else "sink≠N",
            "ledger=N" if r["ledger_sent"] == count else "ledger≠N",
        ]
        target = 0.8 if r["rtt_ms"] == 20 else 0.5 if r["rtt_ms"] == 80 else None
        if target and r["vs_near"] is not None:
            checks.append(f"≥ {target}× near" if r["vs_near"] >= target else f"< {target}× near")
            ok &= r["vs_near"] >= target
        ok &= r["sink_count"] == count and r["ledger_sent"] == count and r["duplicates"] == 0
        vs = f"{r['vs_near']:.2f}" if r["vs_near"] is not None else "-"
        say(
            f"{r['label']:34} {r['rate']:>7.0f} {vs:>8} {r['cpu_per_1000']:>10.2f} "
            f"{r['connections']:>3}/{r['connections_at_once']:<2} {r['duplicates']:>5}  {', '.join(checks)}"
        )
    say("result: " + ("all checks passed" if ok else "SOME CHECKS FAILED"))
    return ok


def database_prepare(url: str | None, workdir: Path) -> str:
    """Return the URL of a fresh, empty database."""
    if not url:
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "digest_bench"
    import psycopg

    admin = urlunsplit((parts.scheme.replace("postgres", "postgresql"), parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def environment_ready(database_url: str | None, workdir: Path) -> tuple[str, dict]:
    """Make a fresh database, set the benchmark's settings, set Django up and migrate; return the URL and env."""
    url = database_prepare(database_url, workdir)
    env = os.environ | {
        "DATABASE_URL": url,
        "VAR_DIR": str(workdir),
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-" + "x" * 40,
        "ALLOWED_HOSTS": "localhost",
        "SITE_URL": "https://news.example.com",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()
    say(f"Migrating {url.split('@')[-1]} …")
    subprocess.run([PYTHON, str(ROOT / "manage.py"), "migrate", "-v0", "--skip-checks"], env=env, check=True)
    return url, env


def issue_markdown(number: int) -> str:
    rows = "\n".join(
        f"| {name} | {number * 10 + i} | {'yes' if i % 2 else 'no'} |" for i, name in enumerate("abcdefgh")
    )
    links = "\n".join(
        f"- [Reference {i}](https://docs.example.com/section/{number}/{i}?ref=digest) explained" for i in range(12)
    )
    prose = (
        "Django's mail stack moved to named mailers this year, and the change touches every project that "
        "sends email. This issue walks through what changed, what to migrate first, and the sharp edges. "
    ) * 8
    code = "\n".join(f"    mailer = mailers['bulk-{i}']  # send through alias {i}" for i in range(10))
    return (
        f"# Part {number}: mailers in practice\n\n{prose}\n\n## Table\n\n| Name | Value | Flag |\n|---|---|---|\n{rows}\n\n"
        f"## Code\n\n```python\n{code.replace('    ', '')}\n```\n\n## Links\n\n{links}\n\n> Reply with questions.\n"
    )


def newsletter_seed(attachment_kb: int = 0):
    """Create the benchmark's newsletter and its three ~5 KB issues published that morning."""
    from django.core.files.base import ContentFile

    from newsletters.models import Attachment, Issue, Newsletter

    newsletter = Newsletter.objects.create(
        name="Bench Weekly", slug="bench", from_email="Bench Weekly <bench@example.com>", send_time=datetime.time(8, 0)
    )
    for number in range(3):
        issue = Issue.objects.create(
            newsletter=newsletter,
            title=f"Mailers in practice, part {number + 1}",
            slug=f"part-{number + 1}",
            body=issue_markdown(number + 1),
            status="published",
            publish_at=NOW - datetime.timedelta(hours=8, minutes=-30 * number),
        )
        if attachment_kb and number == 0:
            Attachment.objects.create(
                issue=issue, file=ContentFile(os.urandom(attachment_kb * 1024), name="report.pdf")
            )
    return newsletter


def seed(count: int, attachment_kb: int) -> None:
    """One newsletter, three ~5 KB issues, `count` readers over six zones and three frequencies."""
    from django.utils import timezone as _  # noqa: F401  (settings are loaded)

    from digest.planning.due import subscriptions_schedule
    from newsletters.models import Subscriber, Subscription
    from project.progress import Progress

    newsletter = newsletter_seed(attachment_kb)
    progress = Progress(what="seeding", unit="readers", stream=sys.stdout)
    chunk = 5000
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        subscribers = Subscriber.objects.bulk_create(
            [
                Subscriber(
                    email=f"reader{n:07}@example.com",
                    name=f"Reader Nº{n}" if n % 5 == 0 else f"Reader {n}",
                    timezone=ZONES[n % len(ZONES)],
                    status="active",
                    confirmed_at=NOW,
                )
                for n in range(start, start + size)
            ]
        )
        Subscription.objects.bulk_create(
            [
                Subscription(
                    subscriber=subscriber,
                    newsletter=newsletter,
                    frequency=FREQUENCIES[(start + i) // len(ZONES) % len(FREQUENCIES)],
                    status="active",
                )
                for i, subscriber in enumerate(subscribers)
            ]
        )
        progress.update(start + size, count)
    progress.close()
    Subscription.objects.update(created_at=NOW - datetime.timedelta(days=8))
    subscriptions_schedule(now=NOW)
    statistics_refresh()


def ledger_reset() -> None:
    """Forget every digest sent and rendered, so the next measurement starts from the same due set."""
    from digest.models import Delivery, Rendering
    from digest.planning.due import subscriptions_schedule
    from newsletters.models import Subscription

    Delivery.objects.all().delete()
    Rendering.objects.all().delete()
    Subscription.objects.update(cursor=None, next_due_at=None)
    subscriptions_schedule(now=NOW)
    statistics_refresh()


def statistics_refresh() -> None:
    """Vacuum and analyze, as autovacuum would on a live database, after a bulk load or reset.

    Without statistics PostgreSQL plans the due-subscriptions query for one row and takes
    minutes at 10,000 (seen on a server with autovacuum off).
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def sample_group(*, signer=None):
    """One real group's prebuilt message (digest.rendering.prebuilt), as the engine builds it, and a reader."""
    from digest.models import Window
    from digest.planning.due import latest_visible
    from digest.planning.windows import window_end, window_for
    from digest.rendering.content import Personal
    from digest.rendering.groups import group_render
    from digest.rendering.headers import list_headers
    from digest.rendering.prebuilt import GroupMessage
    from newsletters.models import Subscription

    subscription = Subscription.objects.select_related("subscriber", "newsletter").filter(frequency="daily").first()
    end = window_end(subscription, now=NOW, latest=latest_visible(now=NOW, newsletter_ids=None))
    window: Window = window_for(subscription, end=end)
    rendered = group_render(window, now=NOW)
    newsletter = rendered.newsletter
    prebuilt = GroupMessage(
        rendered,
        from_email=newsletter.from_email,
        envelope_from="bench@example.com",
        reply_to="",
        headers=list_headers(newsletter=newsletter, issue_ids=rendered.issue_ids),
        signer=signer,
    )
    personal = Personal(
        "Reader",
        "reader@example.com",
        "https://example.com/u/x/",
        "https://example.com/p/x/",
        "<https://example.com/u/x/>",
    )
    return prebuilt, personal


def sample_message(workdir: Path) -> Path:
    """Write one real digest's bytes (as the engine would send them) for the ceiling."""
    from digest.rendering.prebuilt import batch_date

    prebuilt, personal = sample_group()
    data = prebuilt.message_bytes(personal, address=personal.email, message_id="<bench@example.com>", date=batch_date())
    path = workdir / "sample.eml"
    path.write_bytes(data)
    return path


def dkim_costs(workdir: Path, *, count: int = 2000) -> dict:
    """Per-message CPU time of building a reader's bytes with and without DKIM, in this process.

    CPU time (process_time), not wall time, so that other processes on the machine weigh
    less; unsigned and signed messages are built in alternating rounds all the same. Each
    reader has a name and links of their own.
    """
    import dataclasses

    import dkim as dkimpy
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from digest.rendering.dkim import Signer, dns_record, key_create
    from digest.rendering.prebuilt import batch_date

    key = key_create(workdir / "dkim-micro.pem")
    signer = Signer("news.example.com", "bench", key)
    plain, personal = sample_group()
    signed, _ = sample_group(signer=signer)
    readers = [
        dataclasses.replace(personal, name=f"Reader {n}", unsubscribe_url=f"https://example.com/u/{n}/")
        for n in range(count)
    ]
    date = batch_date()
    timings = {"plain": 0.0, "signed": 0.0}
    built = {}
    for start in range(0, count, 100):
        for label, prebuilt in (("plain", plain), ("signed", signed)):
            began = time.process_time()
            for reader in readers[start : start + 100]:
                built[label] = prebuilt.message_bytes(reader, address=reader.email, message_id="<b@x>", date=date)
            timings[label] += time.process_time() - began
    data = built["signed"]
    record = dns_record(key).encode()
    verified = dkimpy.verify(data, dnsfunc=lambda name, timeout=5: record)
    began = time.process_time()
    for _ in range(count):
        key.sign(data[:700], padding.PKCS1v15(), hashes.SHA256())
    rsa_seconds = time.process_time() - began
    reference_count = max(count // 10, 20)
    pem = (workdir / "dkim-micro.pem").read_bytes()
    began = time.process_time()
    for _ in range(reference_count):
        dkimpy.sign(built["plain"], b"bench", b"news.example.com", pem, canonicalize=(b"relaxed", b"relaxed"))
    dkimpy_seconds = time.process_time() - began
    return {
        "bytes": len(data),
        "plain_us": 1e6 * timings["plain"] / count,
        "signed_us": 1e6 * timings["signed"] / count,
        "rsa_us": 1e6 * rsa_seconds / count,
        "dkimpy_us": 1e6 * dkimpy_seconds / reference_count,
        "verified": verified,
    }


def dkim_engine(kind: str, *, count: int, workdir: Path, env: dict) -> list[dict]:
    """The engine end to end without and with DKIM signing, on the same sink, one after the other."""
    from digest.models import Delivery
    from digest.rendering.dkim import key_create

    path = workdir / "dkim.pem"
    key_create(path)
    signing = {
        "DIGEST_DKIM_DOMAIN": "news.example.com",
        "DIGEST_DKIM_SELECTOR": "bench",
        "DIGEST_DKIM_KEY_FILE": str(path),
    }
    rows = []
    for label, extra in (("without DKIM", {}), ("with DKIM", signing)):
        say(f"  engine {label} …")
        runs, counted = engine_runs(kind, processes=1, workdir=workdir, env=env | extra)
        rows.append(
            {
                "label": label,
                "rate": count / runs[0]["seconds"],
                "cpu_per_1000": 1000 * runs[0]["cpu_seconds"] / count,
                "ok": counted["messages"] == count and Delivery.objects.filter(status="sent").count() == count,
            }
        )
    return rows


def dkim_report(costs: dict, rows: list[dict], *, kind: str, count: int, database: str) -> bool:
    say("")
    say(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {database}, {count} readers"
    )
    say(f"DKIM (rsa-sha256, 2048-bit key, relaxed/relaxed) on a {costs['bytes']}-byte digest, per message:")
    extra = costs["signed_us"] - costs["plain_us"]
    say(f"  build a reader's bytes, unsigned        {costs['plain_us']:8.0f} µs")
    say(f"  build and sign them                     {costs['signed_us']:8.0f} µs  (+{extra:.0f} µs for DKIM)")
    say(f"    of which the RSA signature (OpenSSL)  {costs['rsa_us']:8.0f} µs")
    say(f"    of which hashing and headers          {extra - costs['rsa_us']:8.0f} µs")
    say(
        f"  dkimpy signing the same bytes           {costs['dkimpy_us']:8.0f} µs  ({costs['dkimpy_us'] / extra:.1f}× ours)"
    )
    say(f"  dkimpy verifies our signature: {'yes' if costs['verified'] else 'NO'}")
    say(f"Engine end to end ({kind}, one process):")
    say(f"  {'':14} {'msg/s':>7} {'CPU s/1000':>10}  checks")
    for r in rows:
        say(
            f"  {r['label']:14} {r['rate']:>7.0f} {r['cpu_per_1000']:>10.2f}  {'sink=ledger=N' if r['ok'] else 'COUNTS WRONG'}"
        )
    cpu = rows[1]["cpu_per_1000"] - rows[0]["cpu_per_1000"]
    say(f"  DKIM adds {cpu:.2f} CPU s per 1,000 messages ({cpu:.2f} ms a message) end to end; target well under 1 ms")
    say("  (end to end includes per-run costs, such as importing and loading the key: use 10,000 readers or more)")
    ok = costs["verified"] and all(r["ok"] for r in rows)
    say("result: " + ("all checks passed" if ok else "SOME CHECKS FAILED"))
    return ok


def run_json(command: list[str], env: dict) -> dict:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def engine_runs(kind: str, *, processes: int, workdir: Path, env: dict) -> tuple[list[dict], dict]:
    """Reset the ledger, start a fresh sink and run `processes` engines at once; return their figures."""
    ledger_reset()
    command = [PYTHON, str(ROOT / "bench" / "engine.py"), "engine", NOW.isoformat()]
    with Sink(kind, workdir) as sink:
        engine_env = env | {"EMAIL_URL": f"smtp://127.0.0.1:{sink.port}?timeout=60"}
        if processes == 1:
            runs = [run_json(pinned(0, command), engine_env)]
        else:
            started = [
                subprocess.Popen(command, env=engine_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(processes)
            ]
            runs = []
            for process in started:
                out, err = process.communicate(timeout=3600)
                if process.returncode != 0:
                    raise SystemExit(f"an engine process failed:\n{err[-3000:]}")
                runs.append(json.loads(out.strip().splitlines()[-1]))
    return runs, sink.result


def measure(kind: str, *, count: int, processes: int, workdir: Path, env: dict, sample: Path) -> list[dict]:
    """The ceiling, then the engine with one process, and with `processes` at once if more than one."""
    from digest.models import Delivery, Rendering

    with Sink(kind, workdir) as sink:
        ceiling = run_json(
            pinned(0, [PYTHON, str(ROOT / "bench" / "engine.py"), "ceiling", str(sample), str(count), str(sink.port)]),
            env,
        )
    ceiling_rate = count / ceiling["seconds"]
    rows = []
    for k in sorted({1, processes}):
        runs, counted = engine_runs(kind, processes=k, workdir=workdir, env=env)
        total_seconds = max(r["started"] + r["seconds"] for r in runs) - min(r["started"] for r in runs)
        ledger_sent = Delivery.objects.filter(status="sent").count()
        unique = counted["unique_message_ids"]
        rows.append(
            {
                "sink": kind,
                "ceiling_rate": ceiling_rate,
                "ceiling_ok": sink.result["messages"] == count,
                "message_bytes": ceiling["bytes"],
                "engine_rate": count / total_seconds,
                "engine_seconds": total_seconds,
                "sent": sum(r["sent"] for r in runs),
                # Groups rendered in all: a group is rendered once and shared through its
                # Rendering row, so K processes together still call premailer once per group.
                "groups": Rendering.objects.count(),
                "premailer_calls": sum(r["premailer_calls"] for r in runs),
                "queries_per_100": 100 * sum(r["queries"] for r in runs) / count,
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "sink_count": counted["messages"],
                "ledger_sent": ledger_sent,
                # Messages beyond one per reader: aiosmtpd compares Message-IDs; smtp-sink only
                # counts, and each sent delivery in the ledger is a different reader.
                "duplicates": counted["messages"] - (unique if unique is not None else ledger_sent),
                "processes": k,
                "connections_at_once": max(r["connections_at_once"] for r in runs),
                "vs_one": None if k == 1 else (count / total_seconds) / rows[0]["engine_rate"],
            }
        )
    return rows


def imported_compare(kind: str, *, seeded: dict, workdir: Path, env: dict) -> dict:
    """Re-date every reader as imported one after another 2.5 days ago, missed runs since; measure the engine."""
    from digest.models import Delivery, Rendering
    from newsletters.models import Subscription

    start = NOW - datetime.timedelta(days=2, hours=12)
    ids = list(Subscription.objects.order_by("id").values_list("id", flat=True))
    for first in range(0, len(ids), 5000):
        chunk = [
            Subscription(id=pk, created_at=start + datetime.timedelta(microseconds=37 * n))
            for n, pk in enumerate(ids[first : first + 5000], first)
        ]
        Subscription.objects.bulk_update(chunk, ["created_at"])
    runs, counted = engine_runs(kind, processes=1, workdir=workdir, env=env)
    (run,) = runs
    sent = Delivery.objects.filter(status="sent").count()
    return {
        "sink": kind,
        "sent": sent,
        "engine_rate": sent / run["seconds"] if run["seconds"] else 0.0,
        "groups": Rendering.objects.count(),
        "contents": len({tuple(ids) for ids in Rendering.objects.values_list("issue_ids", flat=True)}),
        "premailer_calls": run["premailer_calls"],
        "seeded_rate": seeded["engine_rate"],
        "seeded_groups": seeded["groups"],
        "duplicates": counted["messages"] - sent,
    }


def imported_report(row: dict) -> bool:
    say("")
    say(
        f"Imported readers, first runs missed ({row['sink']}): {row['sent']} sent at {row['engine_rate']:.0f}/s "
        f"({row['engine_rate'] / row['seeded_rate']:.2f}x the seeded run's {row['seeded_rate']:.0f}/s); "
        f"{row['groups']} groups ({row['seeded_groups']} seeded), {row['contents']} distinct contents, "
        f"{row['premailer_calls']} premailer calls, {row['duplicates']} duplicates"
    )
    ok = row["premailer_calls"] == row["groups"] <= 2 * row["seeded_groups"] and not row["duplicates"]
    say("imported: " + ("groups follow content, not readers" if ok else "CHECKS FAILED: groups grow with readers"))
    return ok


BOUNCE_ADDRESS = "bounces@news.example.com"


def verp_compare(kind: str, *, count: int, workdir: Path, env: dict) -> dict:
    """The engine without and with VERP, alternating (A B A B) so drift hits both alike."""
    rates: dict[str, list[float]] = {"plain": [], "verp": []}
    for _ in range(2):
        for variant in ("plain", "verp"):
            extra = {"DIGEST_BOUNCE_ADDRESS": BOUNCE_ADDRESS} if variant == "verp" else {}
            runs, counted = engine_runs(kind, processes=1, workdir=workdir, env=env | extra)
            if counted["messages"] != count:
                raise SystemExit(f"{kind} counted {counted['messages']} messages, not {count} ({variant})")
            rates[variant].append(count / runs[0]["seconds"])
    return {"sink": kind, **rates}


def verp_cost_us() -> float:
    """Microseconds verp_sender() takes per message, timed alone."""
    import timeit

    from django.test.utils import override_settings

    from digest.verp import verp_sender

    with override_settings(DIGEST_BOUNCE_ADDRESS=BOUNCE_ADDRESS):
        calls = 20_000
        seconds = min(timeit.repeat(lambda: [verp_sender(n) for n in range(calls)], number=1, repeat=3))
    return seconds / calls * 1e6


def verp_report(rows: list[dict]) -> None:
    cost = verp_cost_us()
    say("\nVERP envelope sender (DIGEST_BOUNCE_ADDRESS), same run, runs alternated plain/VERP/plain/VERP:")
    for r in rows:
        plain, verp = max(r["plain"]), max(r["verp"])
        say(
            f"  {r['sink']:10} plain {', '.join(f'{x:.0f}' for x in r['plain'])} msg/s; "
            f"VERP {', '.join(f'{x:.0f}' for x in r['verp'])} msg/s; best VERP/plain {verp / plain:.3f}; "
            f"spread between the two plain runs {abs(r['plain'][0] - r['plain'][1]) / plain:.1%}"
        )
        say(f"  {'':10} verp_sender() {cost:.1f} µs per message = {cost / (1e6 / plain):.2%} of a message's time")


def profile(kind: str, *, workdir: Path, env: dict, top: int = 25) -> None:
    """One more (unmeasured) engine run under cProfile; print where its time goes."""
    import pstats

    path = workdir / f"engine-{kind}.prof"
    runs, _ = engine_runs(kind, processes=1, workdir=workdir, env=env | {"BENCH_PROFILE": str(path)})
    say(f"\nProfile of the engine with {kind} ({runs[0]['seconds']:.1f}s under cProfile), by own time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    say("… and by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


def limit_rate(*, count: int, message_bytes: int, sessions: int, workdir: Path) -> float | None:
    """postfix's smtp-source (C) into a fresh smtp-sink: `count` messages of this size over `sessions`
    connections kept open (-d), pinned like the engine; messages per second, or None without postfix."""
    if not (SMTP_SOURCE and SMTP_SINK):
        return None
    command = [SMTP_SOURCE, "-d", "-s", str(sessions), "-l", str(message_bytes), "-m", str(count)]
    with Sink("smtp-sink", workdir) as sink:
        started = time.perf_counter()
        subprocess.run(pinned(0, [*command, f"127.0.0.1:{sink.port}"]), check=True, capture_output=True, timeout=3600)
        seconds = time.perf_counter() - started
    return count / seconds


def limit_report(results: list[dict], *, count: int, workdir: Path) -> None:
    """The machine's limit for mail of this size (smtp-source), and each smtp-sink row's share of it."""
    rows = [r for r in results if r["sink"] == "smtp-sink"]
    if not rows:
        return
    sessions = max(1, max(r["connections_at_once"] for r in rows))
    rate = limit_rate(count=count, message_bytes=rows[0]["message_bytes"], sessions=sessions, workdir=workdir)
    if rate is None:
        say("limit: postfix's smtp-source is not installed (make postfix); no limit row")
        return
    say(f"limit: smtp-source -d -s {sessions} -l {rows[0]['message_bytes']}: {rate:.0f} msg/s (C, the machine's limit)")
    for r in rows:
        say(
            f"  engine, {r['processes']} process{'es' if r['processes'] > 1 else ''}: {r['engine_rate']:.0f} msg/s = "
            f"{r['engine_rate'] / rate:.2f}× the limit (target ≥ 0.5× for one process)"
        )


def report(results: list[dict], *, count: int, database: str) -> bool:
    say("")
    say(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"database {database}, {count} subscribers, pinned: {'yes (taskset)' if TASKSET else 'no'}"
    )
    header = (
        f"{'sink':10} {'ceiling/s':>10} {'engine/s':>9} {'ratio':>6} {'groups':>6} {'premailer':>9} {'SQL/100':>8} "
        f"{'RSS MB':>7} {'procs':>5} {'vs 1':>5} {'dups':>5}  checks"
    )
    say(header)
    say("-" * len(header))
    ok = True
    for r in results:
        checks = [
            "sink=N" if r["sink_count"] == count else f"SINK {r['sink_count']}≠{count}",
            "ledger=N" if r["ledger_sent"] == count else f"LEDGER {r['ledger_sent']}≠{count}",
        ]
        if not r["ceiling_ok"]:
            checks.append("CEILING COUNT WRONG")
        if r["duplicates"]:
            checks.append("DUPLICATES")
        checks.append("premailer=groups" if r["premailer_calls"] == r["groups"] else "premailer≠groups")
        ok &= r["sink_count"] == count and r["ledger_sent"] == count and r["ceiling_ok"] and not r["duplicates"]
        say(
            f"{r['sink']:10} {r['ceiling_rate']:>10.0f} {r['engine_rate']:>9.0f} {r['engine_rate'] / r['ceiling_rate']:>6.2f} "
            f"{r['groups']:>6} {r['premailer_calls']:>9} {r['queries_per_100']:>8.2f} {r['peak_rss_mb']:>7.1f} "
            f"{r['processes']:>5} {'-' if r['vs_one'] is None else f'{r["vs_one"]:.2f}':>5} {r['duplicates']:>5}  "
            f"{', '.join(checks)}"
        )
    say(
        f"message size {results[0]['message_bytes']} bytes; targets: ratio ≥ 0.5 (1 process), premailer = groups, "
        "SQL/100 ≤ 5, K processes clearly above 1, 0 duplicates"
    )
    say("result: " + ("all checks passed" if ok else "CHECKS FAILED"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--database-url", help="PostgreSQL URL of a database to (re)create; default: SQLite")
    parser.add_argument("--sink", choices=["aiosmtpd", "smtp-sink", "all"], default="all")
    parser.add_argument("--processes", type=int, default=1, help="send processes at once (use PostgreSQL)")
    parser.add_argument("--attachment-kb", type=int, default=0, help="attach a file of this size to one issue")
    parser.add_argument("--profile", action="store_true", help="profile the engine (cProfile) and print its hot path")
    parser.add_argument("--verp", action="store_true", help="also compare the engine without and with VERP")
    parser.add_argument(
        "--far", action="store_true", help="far relays: the engine near, at 20 and 80 ms RTT, and with STARTTLS"
    )
    parser.add_argument("--dkim", action="store_true", help="the cost of DKIM signing: per message, and end to end")
    parser.add_argument(
        "--imported", action="store_true", help="also send to readers imported at distinct instants, runs missed"
    )
    args = parser.parse_args()
    sinks = ["aiosmtpd", "smtp-sink"] if args.sink == "all" else [args.sink]
    if "smtp-sink" in sinks and not SMTP_SINK:
        say("postfix's smtp-sink is not installed (Debian: apt-get install postfix); using aiosmtpd only")
        sinks.remove("smtp-sink")

    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    url, env = environment_ready(args.database_url, workdir)
    started = time.perf_counter()
    seed(args.subscribers, args.attachment_kb)
    say(f"Seeded {args.subscribers} subscribers in {time.perf_counter() - started:.1f}s")
    database = "PostgreSQL" if args.database_url else "SQLite"
    if args.far:
        kind = "smtp-sink" if SMTP_SINK and args.sink != "aiosmtpd" else "aiosmtpd"
        say(f"Measuring far relays with {kind} …")
        ok = far_report(
            far(kind, count=args.subscribers, workdir=workdir, env=env), count=args.subscribers, database=database
        )
        shutil.rmtree(workdir, ignore_errors=True)
        return 0 if ok else 1
    if args.dkim:
        kind = "smtp-sink" if SMTP_SINK and args.sink != "aiosmtpd" else "aiosmtpd"
        say(f"Measuring DKIM signing with {kind} …")
        costs = dkim_costs(workdir)
        rows = dkim_engine(kind, count=args.subscribers, workdir=workdir, env=env)
        ok = dkim_report(costs, rows, kind=kind, count=args.subscribers, database=database)
        shutil.rmtree(workdir, ignore_errors=True)
        return 0 if ok else 1
    sample = sample_message(workdir)
    results = []
    for kind in sinks:
        say(f"Measuring with {kind} …")
        results += measure(
            kind, count=args.subscribers, processes=args.processes, workdir=workdir, env=env, sample=sample
        )
    if args.profile:
        profile(sinks[-1], workdir=workdir, env=env)
    ok = report(results, count=args.subscribers, database="PostgreSQL" if args.database_url else "SQLite")
    limit_report(results, count=args.subscribers, workdir=workdir)
    if args.verp:
        verp_report([verp_compare(kind, count=args.subscribers, workdir=workdir, env=env) for kind in sinks])
    if args.imported:
        seeded = next(r for r in results if r["sink"] == sinks[-1] and r["processes"] == 1)
        ok &= imported_report(imported_compare(sinks[-1], seeded=seeded, workdir=workdir, env=env))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
