"""`manage.py process_bounces` on a Maildir, an mbox file and standard input."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from digest.models import BounceEvent
from newsletters.models import Subscriber, SubscriberStatus
from tests.digest.returns.mail import BOUNCE_ADDRESS, delivered_to, flufl_corpus, mbox_of, sent_delivery, verp_address
from tests.digest.returns.test_returned import EXPECTED, _report
from tests.digest.test_processes import database_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _verp(settings):
    settings.DIGEST_BOUNCE_ADDRESS = BOUNCE_ADDRESS


def _corpus_messages() -> tuple[list[bytes], dict[str, int]]:
    """Every corpus file as it lands in the bounce mailbox, each for a delivery of its own."""
    corpus = flufl_corpus()
    messages, expected = [], {"hard": 0, "soft": 0, "ignored": 0}
    for n, name in enumerate(sorted(EXPECTED)):
        delivery = sent_delivery(f"reader{n}@example.com")
        messages.append(delivered_to((corpus / name).read_bytes(), verp_address(delivery)))
        expected[EXPECTED[name]] += 1
    return messages, expected


def _run(*args) -> str:
    out = io.StringIO()
    call_command("process_bounces", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def _maildir(root: Path, messages: list[bytes]) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    for n, raw in enumerate(messages):
        (root / "new" / f"1700000000.M{n}P1.test").write_bytes(raw)
    return root


def test_a_maildir_of_the_whole_corpus_then_again(tmp_path):
    messages, expected = _corpus_messages()
    maildir = _maildir(tmp_path / "bounces", messages)
    summary = _run("--maildir", str(maildir))
    assert summary == (
        f"{expected['hard']} hard, {expected['soft']} soft, 0 complaints, {expected['ignored']} ignored, "
        "0 unmatched, 0 already processed"
    )
    assert Subscriber.objects.filter(status=SubscriberStatus.SUPPRESSED).count() == expected["hard"]
    # Every message was marked seen and moved to cur/, none was lost; a second run reads none.
    assert not list((maildir / "new").iterdir())
    assert sorted(p.name.split(":")[1] for p in (maildir / "cur").iterdir()) == ["2,S"] * len(messages)
    assert _run("--maildir", str(maildir)).startswith("0 hard, 0 soft, 0 complaints, 0 ignored")


def test_an_mbox_read_twice_counts_nothing_twice(tmp_path):
    hard, complaint = sent_delivery("ada@example.com"), sent_delivery("bob@example.com")
    path = tmp_path / "bounces.mbox"
    path.write_bytes(
        mbox_of(
            [
                delivered_to(_report("dsn_rfc3464.eml", hard), verp_address(hard)),
                _report("arf_rfc5965.eml", complaint),
                b"Subject: hello\n\nNot a bounce.\n",
                _report("dsn_rfc3464.eml", hard, mail_from="x@example.org", message_id="<nobody@example.org>"),
            ]
        )
    )
    assert _run("--mbox", str(path)) == "1 hard, 0 soft, 1 complaints, 1 ignored, 1 unmatched, 0 already processed"
    assert _run("--mbox", str(path)) == "0 hard, 0 soft, 0 complaints, 1 ignored, 1 unmatched, 2 already processed"
    assert BounceEvent.objects.count() == 2


def test_one_message_on_standard_input(monkeypatch):
    delivery = sent_delivery()
    raw = delivered_to(_report("dsn_rfc3464.eml", delivery), verp_address(delivery))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert _run("-").startswith("1 hard")
    assert Subscriber.objects.get().status == SubscriberStatus.SUPPRESSED


def test_a_20_mb_message_on_standard_input_is_read_to_the_end_and_skipped(monkeypatch):
    delivery = sent_delivery()
    raw = delivered_to(_report("dsn_rfc3464.eml", delivery), verp_address(delivery)) + b"x" * (20 * 1024 * 1024)
    stream = io.BytesIO(raw)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stream))
    assert _run("-").startswith("0 hard, 0 soft, 0 complaints, 1 ignored")
    assert stream.tell() == len(raw)  # drained: the MTA sees it delivered, not a broken pipe
    assert Subscriber.objects.get().status == SubscriberStatus.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_a_pipe_from_the_mta_as_a_process(settings):
    """As Postfix's pipe transport runs it: a process, the message on stdin, exit 0 when handled."""
    delivery = sent_delivery()
    raw = delivered_to(_report("dsn_rfc3464.eml", delivery), verp_address(delivery))
    env = os.environ | {"DATABASE_URL": database_url(), "DIGEST_BOUNCE_ADDRESS": BOUNCE_ADDRESS}
    result = subprocess.run(
        [sys.executable, "manage.py", "process_bounces", "-"],
        input=raw,
        capture_output=True,
        cwd=django_settings.BASE_DIR,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert b"1 hard" in result.stdout
    assert Subscriber.objects.get().status == SubscriberStatus.SUPPRESSED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Name a source"),
        (["--maildir", "/nonexistent"], "is not a Maildir"),
        (["--mbox", "/nonexistent"], "is not a file"),
        (["--imap", "ftp://x"], "needs a user, a password and a host"),
    ],
)
def test_a_missing_source_is_a_clear_error(args, message, settings):
    settings.BOUNCE_MAILBOX_URL = ""
    with pytest.raises(CommandError, match=message):
        call_command("process_bounces", *args)
