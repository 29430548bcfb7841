"""DSNs made by a real Postfix: digests relayed through it to addresses it cannot deliver, the bounces fed back.

The digest run sends to a private Postfix with DIGEST_BOUNCE_ADDRESS set; Postfix relays
example.com to an aiosmtpd "remote MX" that refuses two readers (550 5.1.1 and 452 4.2.2)
and sends its DSNs to the VERP addresses, which it relays to the same aiosmtpd (the bounce
mailbox). Those DSNs, as the mailbox stores them, go through `process_bounces -`.
"""

import io
import sys
import threading
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command

from digest.models import BounceEvent, BounceKind
from newsletters.models import Subscriber, SubscriberStatus
from tests.digest.conftest import at
from tests.digest.returns.mail import delivered_to
from tests.mailservers import Postfix
from tests.smtp import RecordingHandler, SMTPServer

pytestmark = pytest.mark.django_db


@dataclass
class BounceMailbox(RecordingHandler):
    """Records everything; sets `arrived` once `expected` messages to a bounces+ address are in."""

    expected: int = 2
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.bounces()) >= self.expected:
            self.arrived.set()
        return reply

    def bounces(self):
        return [r for r in self.received if r.recipients[0].startswith("bounces+")]


def test_postfix_dsns_suppress_the_hard_bounce_and_count_the_soft_one(world, settings, monkeypatch):
    handler = BounceMailbox(
        replies={
            "gone@example.com": "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
            "full@example.com": "452 4.2.2 <full@example.com>: Mailbox full",
        }
    )
    with (
        SMTPServer(handler) as remote,
        Postfix({"example.com": remote.port, "bounces.example.org": remote.port}) as relay,
    ):
        settings.MAILERS = {**settings.MAILERS, "digest": relay.mailer()}
        settings.DIGEST_BOUNCE_ADDRESS = "bounces@bounces.example.org"
        for email in ("ada@example.com", "gone@example.com", "full@example.com"):
            world.subscribe(email, since=at(2026, 6, 1))
        world.publish("Issue a", at(2026, 6, 1, 12, 0))
        assert world.run(at(2026, 6, 2, 8, 5)).sent == 3  # Postfix accepted all three
        assert handler.arrived.wait(60), relay.log.read_text()
    assert [r.recipients for r in handler.received if not r.recipients[0].startswith("bounces+")] == [
        ["ada@example.com"]
    ]
    for bounce in handler.bounces():
        assert bounce.sender in ("", "<>")  # a DSN's own envelope sender is null: it can never loop
        raw = delivered_to(bounce.data, bounce.recipients[0])  # as the bounce mailbox stores it
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        call_command("process_bounces", "-", stdout=io.StringIO())
    assert Subscriber.objects.get(email="gone@example.com").status == SubscriberStatus.SUPPRESSED
    assert Subscriber.objects.get(email="full@example.com").status == SubscriberStatus.ACTIVE
    assert Subscriber.objects.get(email="ada@example.com").status == SubscriberStatus.ACTIVE
    hard = BounceEvent.objects.get(kind=BounceKind.HARD)
    assert hard.subscriber.email == "gone@example.com" and hard.status == "5.1.1"
    assert "User unknown" in hard.diagnostic
    soft = BounceEvent.objects.get(kind=BounceKind.SOFT)
    assert soft.subscriber.email == "full@example.com" and soft.status == "4.2.2" and soft.score == 1
