"""The fast path sends what Django's EmailMultiAlternatives would, byte-cheaply, through the configured mailer."""

import email
import email.header
import email.policy
import email.utils
import smtplib

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.core.files.base import ContentFile
from django.core.mail import mailers

from digest.models import Delivery
from digest.planning.message_ids import installation_key, message_id_for
from digest.rendering.content import digest_render
from digest.rendering.headers import list_headers
from digest.rendering.message import message_build, personal_for
from digest.rendering.prebuilt import GroupMessage, batch_date
from digest.sending.smtp import smtp_send
from newsletters.models import Attachment
from tests.digest.conftest import at
from tests.digest.rendering.test_headers import LIST_HEADERS
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.smtp import RecordingHandler, SMTPServer, free_port

pytestmark = pytest.mark.django_db

NAMES = ["Ada Lovelace", "Zoë Ünicode", "", 'Doe, "J." Jr.', "Ωμέγα " * 30, "O'Brien <x@y>"]


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def rfc2047_to(data: bytes) -> tuple[str, str]:
    """Decode the To header as RFC 2047 specifies (the legacy decoder joins adjacent words)."""
    raw = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
    name, address = email.utils.parseaddr(raw)
    return str(email.header.make_header(email.header.decode_header(name))) if name else "", address


def summary(message) -> dict:
    """What a reader's mail program sees: headers, structure, bodies and files."""
    names = ["Subject", "From", "Reply-To", *LIST_HEADERS, "Message-ID"]
    headers = {name: str(message[name]) for name in names}
    [to] = message["To"].addresses
    return {
        "headers": headers,
        "to": (to.display_name, to.addr_spec),
        "structure": [part.get_content_type() for part in message.walk()],
        "text": message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n"),
        "html": message.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n"),
        "files": [(a.get_filename(), a.get_content_type(), a.get_content()) for a in message.iter_attachments()],
        "defects": [type(d).__name__ for part in message.walk() for d in part.defects],
    }


@pytest.mark.parametrize("with_files", [True, False])
def test_fast_path_matches_django_for_every_recipient(settings, with_files):
    settings.SITE_URL = "https://newsletters.a-rather-long-domain-name-for-testing.example.com"
    settings.DIGEST_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    newsletter = NewsletterFactory(
        name="Grüße & Nachrichten",
        reply_to="editors@example.com",
        list_id="gruesse.example.com",
        # Branded, in another template: what the branding adds goes through both paths alike.
        template="magazine",
        accent_color="#8a3ffc",
        header_text="Präsentiert von **Lesern**.",
        footer_text="Geschrieben in [Köln](https://example.com/über).",
        postal_address="Straße 1, 50667 Köln",
    )
    issue = IssueFactory(
        newsletter=newsletter,
        title="Ünïcødé subject — with a dash and “quotes” that is long enough to need folding in the header",
        body="# Ü\n\n" + "A line with a [link](https://example.com/" + "x" * 200 + ") and ümlauts.\n" * 50,
        publish_at=at(2026, 6, 1, 12),
    )
    if with_files:
        Attachment.objects.create(
            issue=issue, file=ContentFile(b"%PDF-1.4 " + bytes(range(256)) * 40, name="report.pdf")
        )
        Attachment.objects.create(
            issue=issue, file=ContentFile("naïve".encode() * 100, name="plain.txt"), display_name="résumé notes.txt"
        )
    rendered = digest_render(
        newsletter=newsletter,
        issues=list(newsletter.issues.all()),
        window_start=at(2026, 6, 1),
        window_end=at(2026, 6, 2),
    )
    headers = list_headers(newsletter=newsletter, issue_ids=rendered.issue_ids)
    prebuilt = GroupMessage(
        rendered,
        from_email=newsletter.from_email,
        envelope_from="news@example.com",
        reply_to=newsletter.reply_to,
        headers=headers,
    )
    for name in NAMES:
        subscription = SubscriptionFactory(subscriber=SubscriberFactory(name=name), newsletter=newsletter)
        delivery = Delivery(
            subscription=subscription,
            newsletter=newsletter,
            window_start=at(2026, 6, 1),
            window_end=at(2026, 6, 2),
            message_id=message_id_for(subscription.pk, at(2026, 6, 2), installation=installation_key()),
        )
        personal = personal_for(delivery)
        fast = prebuilt.message_bytes(
            personal, address=personal.email, message_id=delivery.message_id, date=batch_date()
        )
        django = message_build(rendered=rendered, delivery=delivery, headers=headers)
        django = django.message(policy=email.policy.SMTP).as_bytes()
        ours, theirs = summary(parse(fast)), summary(parse(django))
        assert rfc2047_to(fast) == (name, personal.email)  # exactly the reader's name
        if len(name) < 60:
            assert ours["to"] == theirs["to"] == (name, personal.email)
        # A long non-ASCII name spans several encoded words; Python's modern parser puts a
        # space between them (RFC 2047 says not to), for Django's copy as for ours.
        ours.pop("to"), theirs.pop("to")
        assert ours == theirs, name
        assert ours["defects"] == []
        assert personal.unsubscribe_url in summary(parse(fast))["text"]
        # The URL stays literal in the header (Python's policy would fold it into encoded-words).
        assert f"List-Unsubscribe: <{personal.unsubscribe_url}>".encode() in fast
        assert max(len(line) for line in fast.split(b"\r\n")) <= 998
        assert b"\n" not in fast.replace(b"\r\n", b"")


def test_fast_path_logs_in_with_the_mailers_credentials(world, settings):
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        options = {"host": "127.0.0.1", "port": port, "username": "bulk", "password": "s3cret", "timeout": 10}
        settings.MAILERS = {**settings.MAILERS, "digest": {"OPTIONS": options}}
        assert type(mailers["digest"]).__module__ == "django.core.mail.backends.smtp"
        world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
        world.publish("Issue a", at(2026, 6, 1, 12))
        assert world.run(at(2026, 6, 2, 8, 5)).sent == 1
    finally:
        controller.stop()
    assert seen and seen[0][1:] == (b"bulk", b"s3cret")
    assert [r.recipients for r in handler.received] == [["ada@example.com"]]
    assert world.smtp.received == []  # the default test server got nothing


TRICKY = [
    b".starts with a dot\r\nplain\r\n.dot\r\n..two dots\r\n.\r\nlast line without an end",
    b"Subject: x\r\n\r\n" + b"line\r\n.\r\n" * 500,
    b"no dots at all\r\n",
]


@pytest.mark.parametrize("pipelining", [False, True])
def test_smtp_send_delivers_what_smtplib_sendmail_delivers(pipelining):
    with SMTPServer(RecordingHandler(pipelining=pipelining)) as server:
        smtp = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
        smtp.ehlo()
        assert bool(smtp.has_extn("pipelining")) is pipelining
        for data in TRICKY:
            smtp_send(smtp, "news@example.com", "ada@example.com", data)
            smtp.sendmail("news@example.com", ["ada@example.com"], data)
        smtp.quit()
    received = server.received
    assert len(received) == 2 * len(TRICKY)
    for ours, reference in zip(received[::2], received[1::2], strict=True):
        assert (ours.sender, ours.recipients, ours.data) == (reference.sender, reference.recipients, reference.data)
    assert received[0].data.startswith(b".starts with a dot\r\nplain\r\n.dot\r\n..two dots\r\n.\r\n")


@pytest.mark.parametrize("pipelining", [False, True])
def test_smtp_send_raises_what_sendmail_raises_and_the_connection_goes_on(pipelining):
    replies = {
        "bounce@example.com": "550 5.7.1 Sender refused",
        "full@example.com": "452 4.2.2 Mailbox full",
        "gone@example.com": "550 5.1.1 No such user",
    }
    with SMTPServer(RecordingHandler(pipelining=pipelining, replies=replies)) as server:
        smtp = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp_send(smtp, "bounce@example.com", "ada@example.com", b"x\r\n")
        assert refused.value.smtp_code == 550
        for address, code in (("full@example.com", 452), ("gone@example.com", 550)):
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                smtp_send(smtp, "news@example.com", address, b"x\r\n")
            assert refused.value.recipients[address][0] == code
        # After each refusal the transaction was reset: the same connection still delivers.
        smtp_send(smtp, "news@example.com", "ada@example.com", b"Subject: ok\r\n\r\nbody\r\n")
        smtp.quit()
    assert [(r.sender, r.recipients) for r in server.received] == [("news@example.com", ["ada@example.com"])]
    assert server.handler.connections == 1
