"""Hostile returned mail, read from one table: nothing jams, nothing reaches the database unclean.

Each case is what a reader can send to the return address of their own digest (or an MTA
can produce). Every source (Maildir, mbox, standard input, IMAP, POP3) processes each message
in isolation and marks it, so a genuine bounce behind a thousand of them is still recorded.
The module runs on SQLite and on PostgreSQL (DATABASE_URL), which refuses NUL characters.
"""

import imaplib
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

import digest.returns.returned
import digest.verp
from digest.models import BounceEvent, BounceKind
from digest.returns.returned import Outcome, returned_process
from newsletters.models import Subscriber, SubscriberStatus
from tests.digest.returns.mail import BOUNCE_ADDRESS, delivered_to, mbox_of, sent_delivery, verp_address
from tests.digest.returns.test_process_bounces import _maildir
from tests.digest.returns.test_returned import NOW, _report
from tests.digest.test_processes import database_url
from tests.mailservers import Dovecot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _verp(settings):
    settings.DIGEST_BOUNCE_ADDRESS = BOUNCE_ADDRESS


def _dsn(delivery, *, headers: bytes = b"", **values) -> bytes:
    """A hard-bounce DSN about `delivery`, delivered to its VERP address, with extra outer headers first."""
    return delivered_to(headers + _report("dsn_rfc3464.eml", delivery, **values), verp_address(delivery))


def _unaddressed(delivery, **values) -> bytes:
    """A DSN that carries no token anywhere: only the original's Message-ID can match it."""
    return _report(
        "dsn_rfc3464.eml", delivery, **({"mail_from": "news@example.com", "to": "news@example.com"} | values)
    )


def _fake_tokens(count: int) -> str:
    return " ".join(f"bounces+{n:x}-{'a' * 12}@bounces.example.org" for n in range(count))


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[object], bytes]
    outcome: str


# What each case must come to. A case about the sender's own delivery may well count as their
# bounce (that is only their own address); what matters is that it is handled and marked.
CASES = [
    Case(
        "8-bit outer Message-ID (H1)", lambda d: _dsn(d, headers=b"Message-ID: <\xff\xfe\x80@evil.example>\r\n"), "hard"
    ),
    Case(
        "8-bit Subject, From and Auto-Submitted",
        lambda d: _dsn(d, headers=b"Subject: \xff\r\nFrom: \xfe@x\r\n"),
        "hard",
    ),
    Case(
        "NUL in the original's Message-ID (H2)",
        lambda d: _unaddressed(d, message_id="<digest.\x00x@evil>"),
        "unmatched",
    ),
    Case("NUL in the outer Message-ID", lambda d: _dsn(d, headers=b"Message-ID: <a\x00b@evil.example>\r\n"), "hard"),
    Case(
        "NUL and an encoded surrogate in the diagnostic",
        lambda d: _dsn(d, diagnostic="550 \x00 SURROGATE gone").replace(b"SURROGATE", b"\xed\xb3\xbf"),
        "hard",
    ),
    Case(
        "8-bit bytes in the DSN fields",
        lambda d: _dsn(d).replace(b"Action: failed", b"Action: failed\xe9").replace(b"5.1.1\r", b"5.1.1\xff\r"),
        "hard",
    ),
    Case("a 200 KB diagnostic", lambda d: _dsn(d, diagnostic="550 5.1.1 " + "x" * 200_000), "hard"),
    Case(
        "40 KB of fake tokens (H3)", lambda d: _unaddressed(d, to=_fake_tokens(1500), message_id="<n@x>"), "unmatched"
    ),
    Case("fake tokens before the real one", lambda d: _dsn(d, headers=f"To: {_fake_tokens(3)}\r\n".encode()), "hard"),
    Case(
        "RFC 2231 report-type",
        lambda d: _dsn(d).replace(b"report-type=delivery-status", b"report-type*=utf-8''delivery-status"),
        "hard",
    ),
    Case(
        "a header of 10,000 encoded words",
        lambda d: _dsn(d, headers=b"Subject: " + b"=?utf-8?q?=FF?= " * 10_000 + b"\r\n"),
        "hard",
    ),
    Case(
        "5,000 MIME parts",
        lambda d: _dsn(d).replace(b"--b1--", b"--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 5_000 + b"--b1--"),
        "ignored",
    ),
    Case("binary garbage", lambda d: delivered_to(b"\x00\xff\r\n\r\n" * 1000, verp_address(d)), "ignored"),
    Case("no headers at all", lambda d: b"\r\n\r\n", "ignored"),
]
OUTCOMES = {"hard": Outcome.HARD, "unmatched": Outcome.UNMATCHED, "ignored": Outcome.IGNORED}


def _hostile_messages(attacker, count: int) -> list[bytes]:
    built = [case.build(attacker) for case in CASES]
    return [built[n % len(built)] for n in range(count)]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_hostile_case_is_classified_and_stored_clean(case):
    attacker = sent_delivery("mallory@example.com")
    assert returned_process(case.build(attacker), source="maildir", now=NOW) == OUTCOMES[case.outcome]
    for event in BounceEvent.objects.all():
        assert event.subscriber.email == "mallory@example.com"
        for text in (event.diagnostic, event.raw, event.status):
            assert "\x00" not in text
            text.encode("utf-8")  # no unpaired surrogate
        assert len(event.diagnostic) <= 2000


def test_fake_tokens_cost_a_bounded_number_of_signatures(monkeypatch):
    """H3: every distinct fake token cost an HMAC, and each address rescanned the whole header."""
    victim = sent_delivery()
    raw = _unaddressed(victim, to=_fake_tokens(20_000), message_id="<n@x>")  # 900 KB
    calls = []
    signature = digest.verp._signature
    monkeypatch.setattr(
        digest.verp, "_signature", lambda delivery_id: calls.append(delivery_id) or signature(delivery_id)
    )
    assert returned_process(raw, source="stdin", now=NOW) == Outcome.UNMATCHED
    assert len(calls) <= digest.verp.MAX_CANDIDATES


def _run(*args) -> str:
    out = io.StringIO()
    call_command("process_bounces", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_a_thousand_hostile_messages_then_a_genuine_bounce(tmp_path):
    """The issue's done-when: the bounce behind them is recorded, and every message is marked."""
    attacker, victim = sent_delivery("mallory@example.com"), sent_delivery("ada@example.com")
    maildir = _maildir(tmp_path / "bounces", [*_hostile_messages(attacker, 1000), _dsn(victim)])
    summary = _run("--maildir", str(maildir))
    assert "error" not in summary
    assert Subscriber.objects.get(email="ada@example.com").status == SubscriberStatus.SUPPRESSED
    assert BounceEvent.objects.filter(delivery=victim, kind=BounceKind.HARD).exists()
    assert not list((maildir / "new").iterdir())
    assert len(list((maildir / "cur").iterdir())) == 1001


def _poison_on(monkeypatch, marker: bytes) -> None:
    """Make classifying any message holding `marker` raise, as an unforeseen bug in a parser would."""
    classify = digest.returns.returned.returned_classify

    def poisoned(raw, **kwargs):
        if raw and marker in raw:
            raise RuntimeError("a parser broke")
        return classify(raw, **kwargs)

    monkeypatch.setattr(digest.returns.returned, "returned_classify", poisoned)


def test_whatever_one_message_raises_it_is_counted_marked_and_the_next_is_read(tmp_path, monkeypatch, caplog):
    attacker, victim = sent_delivery("mallory@example.com"), sent_delivery("ada@example.com")
    _poison_on(monkeypatch, b"POISON")
    poison = _dsn(attacker, headers=b"X-Test: POISON\r\n")
    maildir = _maildir(tmp_path / "bounces", [poison, _dsn(victim)])
    assert _run("--maildir", str(maildir)) == (
        "1 hard, 0 soft, 0 complaints, 0 ignored, 0 unmatched, 0 already processed, 1 ignored (error)"
    )
    assert "cannot be processed: skipped" in caplog.text and "a parser broke" in caplog.text
    assert not list((maildir / "new").iterdir())
    assert Subscriber.objects.get(email="mallory@example.com").status == SubscriberStatus.ACTIVE

    box = tmp_path / "bounces.mbox"
    box.write_bytes(mbox_of([poison, _dsn(victim, nonce="again")]))
    assert _run("--mbox", str(box)).endswith("1 ignored (error)")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_hostile_case_on_standard_input_is_handled(case, monkeypatch):
    attacker = sent_delivery("mallory@example.com")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.build(attacker))))
    assert f"1 {OUTCOMES[case.outcome]}" in _run("-")


@pytest.mark.django_db(transaction=True)
def test_a_poison_message_from_the_mta_pipe_exits_0_not_75():
    """H2: a DataError exited 75 (EX_TEMPFAIL), and the MTA retried the same message for days."""
    attacker = sent_delivery("mallory@example.com")
    env = os.environ | {"DATABASE_URL": database_url(), "DIGEST_BOUNCE_ADDRESS": BOUNCE_ADDRESS}
    for case in CASES[:3]:
        result = subprocess.run(
            [sys.executable, "manage.py", "process_bounces", "-"],
            input=case.build(attacker),
            capture_output=True,
            cwd=django_settings.BASE_DIR,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (case.name, result.stderr[-2000:])


@pytest.fixture(scope="module")
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.mark.parametrize("scheme", ["imap", "imap-move", "pop3"])
def test_imap_and_pop3_mark_every_hostile_message_and_read_on(dovecot, scheme, monkeypatch):
    attacker, victim = sent_delivery("mallory@example.com"), sent_delivery("ada@example.com")
    _poison_on(monkeypatch, b"POISON")
    client = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
    client.login(dovecot.user, dovecot.password)
    for folder in ("INBOX", "Processed"):
        status, count = client.select(folder)
        if status == "OK" and int(count[0]):
            client.store("1:*", "+FLAGS", "(\\Deleted)")
            client.expunge()
    messages = [_dsn(attacker, headers=b"X-Test: POISON\r\n"), *(case.build(attacker) for case in CASES), _dsn(victim)]
    for raw in messages:
        assert client.append("INBOX", None, imaplib.Time2Internaldate(time.time()), raw)[0] == "OK"
    client.logout()
    url = {
        "imap": dovecot.url("imap"),
        "imap-move": dovecot.url("imap", query="?move=Processed"),
        "pop3": dovecot.url("pop3", path="/", query="?delete=yes"),
    }[scheme]
    summary = _run(f"--{scheme[:4]}", url)
    assert summary.endswith("1 ignored (error)")
    assert Subscriber.objects.get(email="ada@example.com").status == SubscriberStatus.SUPPRESSED
    # Read again: every message was marked (flagged, moved or deleted), none is read twice.
    assert _run(f"--{scheme[:4]}", url).startswith("0 hard, 0 soft, 0 complaints, 0 ignored, 0 unmatched")


def test_raw_bounces_are_kept_cut_and_capped_per_day(settings):
    """L6: every new Message-ID stored up to 10 MB of raw message for 30 days."""
    settings.DIGEST_BOUNCE_RAW_MAX_BYTES = 64 * 1024
    settings.DIGEST_BOUNCE_RAW_DAY_BYTES = 2 * 64 * 1024
    deliveries = [sent_delivery(f"reader{n}@example.com") for n in range(3)]
    for delivery in deliveries:
        raw = _dsn(delivery) + b"x" * (1024 * 1024)
        assert returned_process(raw, source="maildir", now=NOW) == Outcome.HARD
    kept = [len(event.raw.encode()) for event in BounceEvent.objects.order_by("id")]
    assert kept[0] == kept[1] == 64 * 1024
    assert kept[2] == 0  # the day's share is used up: the event is stored, its message is not
    assert BounceEvent.objects.count() == 3


def test_a_hundred_thousand_mime_parts_are_ignored_unparsed():
    """They took the email package and flufl.bounce's detectors about a minute."""
    attacker = sent_delivery("mallory@example.com")
    parts = b"--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 100_000
    raw = _dsn(attacker).replace(b"--b1--", parts + b"--b1--")
    assert returned_process(raw, source="maildir", now=NOW) == Outcome.IGNORED
    assert not BounceEvent.objects.exists()
