"""Reading returned mail: flufl.bounce's corpus, ARF complaints, auto-replies, hostile input."""

import datetime
import uuid

import pytest

from digest.models import BounceEvent, BounceKind
from digest.returns.returned import Outcome, returned_process
from digest.verp import verp_token
from newsletters.models import SubscriberStatus, SubscriptionStatus
from tests.digest.returns.mail import BOUNCE_ADDRESS, delivered_to, flufl_corpus, sample, sent_delivery, verp_address
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 6, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _verp(settings):
    settings.DIGEST_BOUNCE_ADDRESS = BOUNCE_ADDRESS


# flufl.bounce's samples and how each is classified. From its own tests (tests/test_detectors.py:
# temporary → soft, permanent → hard, nothing found → ignored), with three differences of ours:
# dsn_02 is a DSN with Status 4.4.7 (the relay gave up retrying): soft by its status code, as
# the policy defines it; dsn_15 is a bounce wrapped in a bounce: ignored (loops are never acted
# on); qmail_08 is an auto-reply, where flufl.bounce finds no address either. bounce_01 is in
# no test of theirs; flufl.bounce finds nothing in it.
SOFT = {
    "dsn_02.txt",
    "dsn_05.txt",
    "dsn_06.txt",
    "dsn_07.txt",
    "dsn_08.txt",
    "dsn_17.txt",
    "simple_03.txt",
    "simple_21.txt",
    "simple_22.txt",
    "simple_28.txt",
    "simple_35.txt",
    "simple_40.txt",
}
IGNORED = {"bounce_01.txt", "dsn_15.txt", "dumbass_01.txt", "groupwise_03.txt", "simple_43.txt", "qmail_08.txt"}
HARD = {
    *(f"dsn_{n:02}.txt" for n in (1, 3, 4, 9, 10, 11, 12, 13, 14, 16, 18)),
    *(f"postfix_{n:02}.txt" for n in range(1, 6)),
    *(f"qmail_{n:02}.txt" for n in range(1, 8)),
    *(f"smtp32_{n:02}.txt" for n in range(1, 8)),
    *(f"yahoo_{n:02}.txt" for n in range(1, 14)),
    *(f"simple_{n:02}.txt" for n in range(1, 46) if f"simple_{n:02}.txt" not in SOFT | IGNORED),
    *(f"microsoft_{n:02}.txt" for n in range(1, 5)),
    *(f"groupwise_{n:02}.txt" for n in (1, 2)),
    *(f"bounce_{n:02}.txt" for n in (2, 3)),
    "aol_01.txt",
    "caiwireless_01.txt",
    "exim_01.txt",
    "hotpop_01.txt",
    "llnl_01.txt",
    "netscape_01.txt",
    "newmailru_01.txt",
    "sendmail_01.txt",
    "sina_01.txt",
    "yale_01.txt",
}
EXPECTED = {**dict.fromkeys(HARD, Outcome.HARD), **dict.fromkeys(SOFT, Outcome.SOFT)}
EXPECTED.update(dict.fromkeys(IGNORED, Outcome.IGNORED))


@pytest.fixture(scope="session")
def corpus():
    return flufl_corpus()


def test_the_table_covers_the_whole_corpus(corpus):
    assert set(EXPECTED) == {path.name for path in corpus.glob("*_*.txt")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flufl_bounce_corpus_is_classified(name, corpus):
    delivery = sent_delivery()
    raw = delivered_to((corpus / name).read_bytes(), verp_address(delivery))
    outcome = returned_process(raw, source="maildir", now=NOW)
    assert outcome == EXPECTED[name]
    events = list(BounceEvent.objects.all())
    status = delivery.subscription.subscriber.__class__.objects.get().status
    if outcome == Outcome.IGNORED:
        assert events == [] and status == SubscriberStatus.ACTIVE
    else:
        [event] = events
        assert event.delivery == delivery and event.kind == outcome
        # Hard: suppressed at once; one soft bounce stays under the threshold.
        assert status == (SubscriberStatus.SUPPRESSED if outcome == Outcome.HARD else SubscriberStatus.ACTIVE)


def _report(name: str, delivery, **values) -> bytes:
    subscriber = delivery.subscription.subscriber
    defaults = {
        "to": BOUNCE_ADDRESS,
        "recipient": subscriber.email,
        "mail_from": verp_address(delivery),
        "return_path": verp_address(delivery),
        "message_id": delivery.message_id,
        "nonce": uuid.uuid4().hex,
        "type": "abuse",
        "action": "failed",
        "status": "5.1.1",
        "diagnostic": "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown",
    }
    return sample(name, **(defaults | values))


@pytest.mark.parametrize(
    ("name", "values", "how"),
    [
        ("arf_rfc5965.eml", {}, "VERP token"),  # Original-Mail-From: the envelope sender
        ("arf_return_path.eml", {}, "VERP token"),  # the original's Return-Path (Yahoo's shape)
        ("arf_redacted_headers.eml", {}, "original Message-ID"),  # recipient redacted (Microsoft's shape)
    ],
)
def test_a_complaint_unsubscribes_the_reader_from_everything(name, values, how):
    delivery = sent_delivery()
    subscriber = delivery.subscription.subscriber
    other = SubscriptionFactory(subscriber=subscriber)
    assert returned_process(_report(name, delivery, **values), source="imap", now=NOW) == Outcome.COMPLAINT
    subscriber.refresh_from_db()
    assert subscriber.status == SubscriberStatus.UNSUBSCRIBED
    assert set(subscriber.subscriptions.values_list("status", flat=True)) == {SubscriptionStatus.UNSUBSCRIBED}
    other.refresh_from_db()
    [event] = BounceEvent.objects.all()
    assert event.kind == BounceKind.COMPLAINT and event.action == "unsubscribed"
    assert "complaint (abuse)" in event.diagnostic and event.delivery == delivery


@pytest.mark.parametrize("feedback_type", ["not-spam", "auth-failure"])
def test_feedback_that_is_not_a_complaint_is_ignored(feedback_type):
    delivery = sent_delivery()
    raw = _report("arf_rfc5965.eml", delivery, type=feedback_type)
    assert returned_process(raw, source="imap", now=NOW) == Outcome.IGNORED
    assert not BounceEvent.objects.exists()


@pytest.mark.parametrize(
    ("status", "action", "outcome"),
    [("5.1.1", "failed", Outcome.HARD), ("4.2.2", "delayed", Outcome.SOFT), ("4.2.2", "failed", Outcome.SOFT)],
)
def test_a_dsn_is_hard_or_soft_by_its_status_code(status, action, outcome):
    delivery = sent_delivery()
    raw = _report("dsn_rfc3464.eml", delivery, status=status, action=action, diagnostic=f"452 {status} mailbox full")
    assert returned_process(raw, source="stdin", now=NOW) == outcome
    [event] = BounceEvent.objects.all()
    assert (event.kind, event.status) == (outcome, status)
    assert f"{status} mailbox full" in event.diagnostic


def test_a_dsn_without_token_is_matched_by_the_returned_message_id(settings):
    delivery = sent_delivery()
    raw = _report("dsn_rfc3464.eml", delivery, mail_from="digest@localhost", to="digest@localhost")
    assert returned_process(raw, source="stdin", now=NOW) == Outcome.HARD
    assert BounceEvent.objects.get().delivery == delivery


def test_a_dsn_to_the_plain_address_is_matched_by_the_returned_return_path():
    delivery = sent_delivery()
    raw = _report("dsn_rfc3464.eml", delivery, message_id="<not-ours@example.org>")  # To: the plain address
    assert returned_process(raw, source="stdin", now=NOW) == Outcome.HARD
    assert BounceEvent.objects.get().delivery == delivery


def test_the_same_report_read_twice_counts_once():
    delivery = sent_delivery()
    raw = _report("dsn_rfc3464.eml", delivery, status="4.2.2", action="delayed")
    assert returned_process(raw, source="mbox", now=NOW) == Outcome.SOFT
    assert returned_process(raw, source="mbox", now=NOW) == Outcome.DUPLICATE
    assert BounceEvent.objects.count() == 1


def test_an_auto_reply_is_ignored():
    delivery = sent_delivery()
    raw = delivered_to(_report("vacation.eml", delivery, to=verp_address(delivery)), verp_address(delivery))
    assert returned_process(raw, source="imap", now=NOW) == Outcome.IGNORED
    assert not BounceEvent.objects.exists()
    assert delivery.subscription.subscriber.status == SubscriberStatus.ACTIVE


# ------------------------------------------------------------------------ bad input


def _unchanged(delivery) -> None:
    delivery.subscription.subscriber.refresh_from_db()
    assert delivery.subscription.subscriber.status == SubscriberStatus.ACTIVE
    assert not BounceEvent.objects.exists()


def test_a_bounce_of_a_bounce_is_ignored():
    delivery = sent_delivery()
    raw = delivered_to(_report("bounce_of_bounce.eml", delivery), verp_address(delivery))
    assert returned_process(raw, source="imap", now=NOW) == Outcome.IGNORED
    _unchanged(delivery)


def test_a_forged_token_matches_nobody(caplog):
    victim = sent_delivery()
    forged = f"bounces+{verp_token(victim.pk).split('-')[0]}-{'a' * 12}@bounces.example.org"
    raw = delivered_to(_report("dsn_rfc3464.eml", victim, mail_from=forged, message_id="<x@example.org>"), forged)
    assert returned_process(raw, source="stdin", now=NOW) == Outcome.UNMATCHED
    assert "signature is wrong" in caplog.text
    _unchanged(victim)


def test_a_token_of_another_secret_key_matches_nobody(settings):
    victim = sent_delivery()
    settings.SECRET_KEY = "another-" * 8
    address = verp_address(victim)
    settings.SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
    raw = delivered_to(_report("dsn_rfc3464.eml", victim, mail_from=address, message_id="<y@example.org>"), address)
    assert returned_process(raw, source="stdin", now=NOW) == Outcome.UNMATCHED
    _unchanged(victim)


def test_a_token_for_an_unknown_delivery_matches_nobody():
    delivery = sent_delivery()
    address = verp_address(delivery)
    raw = delivered_to(_report("dsn_rfc3464.eml", delivery, message_id="<z@example.org>"), address)
    delivery.delete()
    assert returned_process(raw, source="stdin", now=NOW) == Outcome.UNMATCHED
    assert not BounceEvent.objects.exists()


def test_a_guessed_message_id_matches_nobody():
    delivery = sent_delivery()
    guessed = delivery.message_id.rsplit(".", 1)[0] + ".000000000000@localhost>"
    raw = _report("arf_redacted_headers.eml", delivery, message_id=guessed)
    assert returned_process(raw, source="imap", now=NOW) == Outcome.UNMATCHED
    _unchanged(delivery)


@pytest.mark.parametrize(
    "raw",
    [
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\r\n\r\n--x\r\n'
        b"Content-Type: message/delivery-status\r\n\r\n\xff\xfe\x00garbage\r\n--x",  # cut short, binary
        b"\x00\x01\x02 not a message at all \xff" * 100,
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n" * 50,
        b"",
    ],
    ids=["truncated-dsn", "binary", "empty-boundary", "nested-rfc822", "empty"],
)
def test_malformed_mime_is_skipped(raw):
    delivery = sent_delivery()
    raw = delivered_to(raw, verp_address(delivery))
    assert returned_process(raw, source="stdin", now=NOW) in (Outcome.IGNORED, Outcome.UNMATCHED)
    _unchanged(delivery)


def test_a_20_mb_message_is_skipped_unread():
    delivery = sent_delivery()
    raw = _report("dsn_rfc3464.eml", delivery) + b"x" * (20 * 1024 * 1024)
    assert returned_process(delivered_to(raw, verp_address(delivery)), source="stdin", now=NOW) == Outcome.IGNORED
    _unchanged(delivery)
