"""`process_bounces` against a real Dovecot: IMAP (flag or move, never lose) and POP3."""

import imaplib
import io
import poplib
import time

import pytest
from django.core.management import CommandError, call_command

from digest.cron import process_bounces_job
from digest.models import BounceEvent
from digest.returns.mailboxes import KEYWORD
from newsletters.models import Subscriber, SubscriberStatus
from tests.digest.returns.mail import BOUNCE_ADDRESS, delivered_to, sent_delivery, verp_address
from tests.digest.returns.test_returned import _report
from tests.mailservers import Dovecot

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.fixture
def mailbox(dovecot, settings):
    """An empty INBOX (and no Processed folder), and four returned messages to put in it."""
    settings.DIGEST_BOUNCE_ADDRESS = BOUNCE_ADDRESS
    settings.DIGEST_BOUNCE_MAX_BYTES = 64 * 1024
    client = _imap(dovecot)
    for folder in ("INBOX", "Processed"):
        status, count = client.select(folder)
        if status == "OK" and int(count[0]):
            client.store("1:*", "+FLAGS", "(\\Deleted)")
            client.expunge()
    client.select("INBOX")
    hard, complaint = sent_delivery("ada@example.com"), sent_delivery("bob@example.com")
    messages = [
        delivered_to(_report("dsn_rfc3464.eml", hard), verp_address(hard)),
        _report("arf_rfc5965.eml", complaint),
        b"Subject: hello\r\nFrom: someone@example.com\r\n\r\nNot a bounce.\r\n",
        b"Subject: big\r\n\r\n" + b"x" * (100 * 1024),  # over DIGEST_BOUNCE_MAX_BYTES: never downloaded
    ]
    for raw in messages:
        assert client.append("INBOX", None, imaplib.Time2Internaldate(time.time()), raw)[0] == "OK"
    client.logout()
    return dovecot


def _imap(dovecot) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
    client.login(dovecot.user, dovecot.password)
    return client


def _run(*args) -> str:
    out = io.StringIO()
    call_command("process_bounces", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def _flags(dovecot, folder="INBOX") -> list[str]:
    client = _imap(dovecot)
    _, data = client.fetch("1:*", "(FLAGS)") if int(client.select(folder, readonly=True)[1][0]) else ("OK", [])
    client.logout()
    return [item.decode() for item in data if item]


FIRST = "1 hard, 0 soft, 1 complaints, 2 ignored, 0 unmatched, 0 already processed"
NOTHING = "0 hard, 0 soft, 0 complaints, 0 ignored, 0 unmatched, 0 already processed"


def test_imap_messages_are_flagged_never_lost_and_read_once(mailbox):
    assert _run("--imap", mailbox.url("imap")) == FIRST
    assert Subscriber.objects.get(email="ada@example.com").status == SubscriberStatus.SUPPRESSED
    assert Subscriber.objects.get(email="bob@example.com").status == SubscriberStatus.UNSUBSCRIBED
    flags = _flags(mailbox)
    assert len(flags) == 4 and all("\\Seen" in f and KEYWORD in f for f in flags)
    assert _run("--imap", mailbox.url("imap")) == NOTHING


def test_imap_messages_can_be_moved_to_a_folder(mailbox):
    assert _run("--imap", mailbox.url("imap", query="?move=Processed")) == FIRST
    assert _flags(mailbox, "INBOX") == []
    assert len(_flags(mailbox, "Processed")) == 4
    assert _run("--imap", mailbox.url("imap", query="?move=Processed")) == NOTHING


def test_the_mailbox_url_setting_is_the_default_source(mailbox, settings):
    settings.BOUNCE_MAILBOX_URL = mailbox.url("imap")
    assert _run() == FIRST


def test_the_cron_job_reads_the_mailbox_and_logs_the_summary(mailbox, settings, caplog):
    settings.BOUNCE_MAILBOX_URL = mailbox.url("imap")
    caplog.set_level("INFO", logger="digest.cron")
    process_bounces_job()
    assert FIRST in caplog.text
    assert Subscriber.objects.get(email="ada@example.com").status == SubscriberStatus.SUPPRESSED


def test_pop3_keeps_messages_unless_asked_and_counts_nothing_twice(mailbox):
    assert _run("--pop3", mailbox.url("pop3", path="/")) == FIRST
    assert _run("--pop3", mailbox.url("pop3", path="/")) == (
        "0 hard, 0 soft, 0 complaints, 2 ignored, 0 unmatched, 2 already processed"
    )
    assert BounceEvent.objects.count() == 2
    _run("--pop3", mailbox.url("pop3", path="/", query="?delete=yes"))
    client = poplib.POP3("127.0.0.1", mailbox.pop3_port, timeout=30)
    client.user(mailbox.user)
    client.pass_(mailbox.password)
    assert client.stat()[0] == 0
    client.quit()


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_a_wrong_password_is_a_clear_error_and_changes_nothing(mailbox, scheme):
    url = mailbox.url(scheme).replace("s3cret", "wrong")
    with pytest.raises(CommandError, match=f"{scheme}://bounces@127.0.0.1/") as caught:
        call_command("process_bounces", f"--{scheme}", url)
    assert "wrong" not in str(caught.value)  # the password is never printed
    assert not BounceEvent.objects.exists()


def test_a_missing_imap_folder_is_a_clear_error(mailbox):
    with pytest.raises(CommandError, match="cannot open folder 'Nope'"):
        call_command("process_bounces", "--imap", mailbox.url("imap", path="/Nope"))


@pytest.mark.parametrize("query", ["?move=Done%0D%0Aa1 DELETE INBOX", "?move=Done%0A"])
def test_a_move_folder_with_cr_or_lf_is_refused_before_the_server_sees_it(mailbox, query):
    with pytest.raises(CommandError, match="holds a control character"):
        call_command("process_bounces", "--imap", mailbox.url("imap", query=query))
    assert len(_flags(mailbox)) == 4 and not any("\\Seen" in flags for flags in _flags(mailbox))
    assert not BounceEvent.objects.exists()
