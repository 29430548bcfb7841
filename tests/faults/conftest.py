"""What every fault scenario checks, and the sender processes it puts under faults.

The relay is a real aiosmtpd server that records each message it accepts before answering
250: its envelope recipient, and its own To and Message-ID headers. After a scenario:
- no message reached a reader whose address is not the one in its To header (a poisoned
  connection completes one reader's transaction with another's message);
- every reader's digest arrived (nothing lost);
- duplicates are within the bound the scenario allows (the messages in flight), and a
  reader's copies carry the one Message-ID of that reader's delivery.
"""

import collections
import contextlib
import subprocess
import time
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

from digest.models import Delivery
from tests.digest.conftest import World, world  # noqa: F401  (the fixture, for the relay scenarios)
from tests.digest.test_processes import RUN_AT, readers, sender
from tests.smtp import GateHandler, Received, SMTPServer

__all__ = ["RUN_AT", "readers"]  # for the scenarios


@dataclass
class Scene:
    smtp: SMTPServer
    gate: GateHandler
    emails: list[str]
    process: subprocess.Popen


@contextlib.contextmanager
def gated_relay(settings, *, at: int, hold: int):
    """A relay that from message `at` on accepts each message but holds its reply until `reopen()`."""
    gate = GateHandler()
    gate.close(at=at, hold_count=hold)
    with SMTPServer(gate) as smtp:
        settings.MAILERS = {"default": smtp.mailer(), "digest": smtp.mailer()}
        yield smtp, gate


@contextlib.contextmanager
def mid_batch(settings, machine: Path, *, count: int, at: int, connections: int, **sender_settings):
    """A sender process caught mid-batch: yields once each of its connections waits for a held reply.

    `count` readers get one issue; the relay holds every reply from message `at` on.
    """
    with gated_relay(settings, at=at, hold=connections) as (smtp, gate):
        emails = readers(World(smtp), count)
        process = sender(smtp, machine, CONNECTIONS=connections, **sender_settings)
        assert gate.reached.wait(60), process.communicate(timeout=5)
        try:
            yield Scene(smtp, gate, emails, process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)


def wait_until(condition, *, timeout: float, what: str) -> None:
    """Poll `condition` until it holds: the other side is another process, with nothing to wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def guarantees(received: list[Received], *, emails: list[str], duplicates_at_most: int) -> int:
    """Assert the guarantees every scenario keeps; return how many duplicates there were."""
    wrong = [(r.recipients, r.message["To"]) for r in received if [parseaddr(r.message["To"])[1]] != list(r.recipients)]
    assert wrong == [], f"{len(wrong)} messages reached a reader they were not addressed to: {wrong[:5]}"
    message_id = dict(Delivery.objects.values_list("subscription__subscriber__email", "message_id"))
    foreign = [
        (r.recipients[0], r.message["Message-ID"])
        for r in received
        if r.message["Message-ID"] != message_id[r.recipients[0]]
    ]
    assert foreign == [], f"messages with another delivery's Message-ID: {foreign[:5]}"
    per_reader = collections.Counter(r.recipients[0] for r in received)
    lost = sorted(set(emails) - set(per_reader))
    assert lost == [], f"{len(lost)} readers never got their digest: {lost[:5]}"
    duplicates = sum(count - 1 for count in per_reader.values())
    assert duplicates <= duplicates_at_most, f"{duplicates} duplicates, more than {duplicates_at_most}"
    return duplicates
