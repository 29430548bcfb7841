"""Sending with every CPU: `send_digests --processes N` runs N sender processes after one plan.

One process sends with one CPU (its connection threads share the GIL). After planning, the
run starts N `send_digests --sender` processes on this machine; each is a send task of its
own (digest.tasks.digest_send, inline), claiming batches from the ledger with its own lease,
so the guarantees are those of senders on several machines: SKIP LOCKED claims, a journal,
nothing sent twice but what was in flight when one died. They share DIGEST_CONNECTIONS
(each gets its part) and the rate limit (each gets its share of DIGEST_RATE_LIMIT).

`auto` is one process per CPU on PostgreSQL. SQLite has one writer at a time, so there it
stays one process and says why; so it does with task workers (they send, not the run) and
inside a transaction (other processes would not see the plan).
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.tasks import TaskResultStatus
from django.tasks.backends.immediate import ImmediateBackend

from digest.conf import digest_settings
from digest.exceptions import DigestError
from digest.planning.due import newsletters_selected
from digest.sending.ledger import deliveries_waiting
from digest.tasks import digest_send, sends_enqueue

# How often the run looks at the ledger for its progress line while the senders work.
PROGRESS_EVERY = 1.0


def processes_resolve(asked: str | int, *, say: Callable[[str], None]) -> int:
    """How many sender processes a run starts: `asked` (a number, or "auto": one per CPU), or 1 where more cannot help."""
    if asked == "auto":
        wanted = os.cpu_count() or 1
    else:
        wanted = int(asked)
        if wanted < 1:
            raise DigestError(f"--processes {asked}: must be at least 1, or auto.")
    if wanted == 1:
        return 1
    reason = ""
    if connection.vendor != "postgresql":
        reason = "SQLite lets one process write at a time"
    elif not isinstance(digest_send.get_backend(), ImmediateBackend):
        reason = "the task workers send (TASKS_URL), not this run"
    elif connection.in_atomic_block:
        reason = "the plan is not committed yet (inside a transaction)"
    if reason:
        if asked != "auto":
            say(f"sending with one process: {reason}")
        return 1
    return wanted


def senders_run(
    count: int,
    *,
    now,
    newsletter_slug: str | None,
    newsletter_ids: list[int] | None,
    say: Callable[[str], None],
    on_batch: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Start `count` sender processes, report progress from the ledger until they end; return each one's counts."""
    total = deliveries_waiting(now=now, newsletter_ids=newsletter_ids).count()
    env = os.environ | {
        "DATABASE_URL": database_url(connection.settings_dict),
        "DIGEST_CONNECTIONS": str(max(1, digest_settings.CONNECTIONS // count)),
        "DIGEST_RATE_LIMIT": str(max(1, digest_settings.RATE_LIMIT // count) if digest_settings.RATE_LIMIT else 0),
    }
    command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "send_digests", "--sender"]
    command += ["--now", now.isoformat()] + (["--newsletter", newsletter_slug] if newsletter_slug else [])
    say(f"sending with {count} processes, {env['DIGEST_CONNECTIONS']} connections each")
    children = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent
        )
        for _ in range(count)
    ]
    while any(child.poll() is None for child in children):
        if on_batch:
            left = deliveries_waiting(now=now, newsletter_ids=newsletter_ids).count()
            on_batch(max(0, total - left), total)
        time.sleep(PROGRESS_EVERY)  # the senders are other processes: only the ledger tells how far they are
    counts, failures = [], []
    for child in children:
        out, err = child.communicate()
        if child.returncode == 0:
            counts.append(json.loads(out))
        else:
            failures.append(err.strip().splitlines()[-1] if err.strip() else f"exit status {child.returncode}")
    if failures:
        # What the others sent is recorded; the failed one's claims expire and are sent by the next run.
        raise DigestError(f"{len(failures)} of {count} sender processes failed: {failures[0]}")
    return counts


def _die_with_parent() -> None:
    """In a sender, before it starts: SIGTERM when the run's process dies (Linux's PR_SET_PDEATHSIG).

    A run killed with -9 then leaves no sender behind: each finishes the messages in flight,
    records them and hands the rest back, as on any SIGTERM (digest.sending.lease).
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def database_url(database: dict) -> str:
    """The URL of a DATABASES entry (the test database too), for a process started from this one."""
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = quote(database.get("USER") or "postgres", safe="")
    password = f":{quote(database['PASSWORD'], safe='')}" if database.get("PASSWORD") else ""
    host, port = database.get("HOST") or "127.0.0.1", database.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{quote(database['NAME'], safe='')}"


def sender_run(*, now, newsletter_slug: str | None) -> dict:
    """One of a run's sender processes: send what is planned, as one send task run here; return its counts."""
    [result] = sends_enqueue(now=now, newsletter_ids=newsletters_selected(newsletter_slug))
    if result.status == TaskResultStatus.FAILED:
        error = result.errors[-1].traceback.strip().splitlines()[-1] if result.errors else "unknown error"
        raise DigestError(f"The send task {result.id} failed: {error}")
    return result.return_value
