"""DKIM: every digest the engine sends verifies with dkimpy, on the fast path and Django's path."""

import email
import email.encoders
import email.policy
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone
from freezegun import freeze_time

from digest.checks import check_dkim_key_file
from digest.models import Delivery, DeliveryStatus
from digest.rendering.content import EMAIL, GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, Personal, RenderedDigest
from digest.rendering.dkim import Signer, body_canonical, dkim_signer, dns_record, header_canonical
from digest.rendering.prebuilt import GroupMessage
from newsletters.messages import Verbatim
from newsletters.models import Attachment, Newsletter
from newsletters.services import subscription_request
from tests.digest.conftest import at
from tests.digest.sending.test_senders import SENDERS
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.letters import welcome_deliver

DOMAIN, SELECTOR = "news.example.com", "digest2026"
ANYMAIL = "anymail.backends.test.EmailBackend"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def signing(settings, tmp_path, key):
    """Turn signing on with a key file, as an operator would."""
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem(key))
    settings.DIGEST_DKIM_DOMAIN, settings.DIGEST_DKIM_SELECTOR, settings.DIGEST_DKIM_KEY_FILE = (
        DOMAIN,
        SELECTOR,
        str(path),
    )
    return key


def verify(data: bytes, key) -> bool:
    """dkimpy's verdict, with the public key served as DNS would serve the TXT record."""
    record = dns_record(key).encode()

    def dns(name, timeout=5):
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else b""

    return dkimpy.verify(data, dnsfunc=dns)


def signature_tags(data: bytes) -> dict:
    field = email.message_from_bytes(data, policy=email.policy.default)["DKIM-Signature"]
    tags = dict(tag.strip().split("=", 1) for tag in re.sub(r"\s+", "", str(field)).split(";") if tag)
    return {**tags, "t": int(tags["t"])}


def signed_headers(data: bytes) -> list[str]:
    return signature_tags(data)["h"].split(":")


@pytest.fixture(params=SENDERS)
def sender(request, world, settings):
    settings.MAILERS = {**settings.MAILERS, "digest": {**world.smtp.mailer(), "BACKEND": SENDERS[request.param]}}
    return request.param


def test_every_digest_verifies_either_way_and_the_list_headers_are_covered(world, sender, signing, settings, tmp_path):
    settings.SITE_URL = "https://news.example.com"
    settings.DIGEST_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    world.subscribe("ada@example.com", name="Zoë Ünicode", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", name="Bob", since=at(2026, 6, 1))
    body = "Tabs\tand  double  spaces, a trailing one \n\n    code  block\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    issue = world.publish("Issue one", at(2026, 6, 2, 9, 0), body=body)
    upload = tmp_path / "report.pdf"
    upload.write_bytes(b"%PDF-1.4 report")
    with upload.open("rb") as handle:
        Attachment.objects.create(issue=issue, file=File(handle, name="report.pdf"))
    assert world.run(at(2026, 6, 3, 8, 5)).sent == 2
    received = world.smtp.received
    assert len(received) == 2
    for message in received:
        assert verify(message.data, signing), message.data[:800]
        covered = signed_headers(message.data)
        for name in ("from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe", "feedback-id"):
            assert name in covered
        # Listed once more than present: nobody can add a second one without breaking the signature.
        for name in ("from", "to", "date", "message-id", "content-type", "mime-version", "list-unsubscribe-post"):
            assert covered.count(name) == 2, name
        assert abs(signature_tags(message.data)["t"] - time.time()) < 600  # when it was signed


def test_a_changed_body_or_an_added_header_fails_verification(world, sender, signing):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 9, 0), body="Pay the invoice at our bank.")
    world.run(at(2026, 6, 3, 8, 5))
    (received,) = world.smtp.received
    assert verify(received.data, signing)
    assert not verify(received.data.replace(b"our bank", b"my bank"), signing)
    header_end = received.data.index(b"\r\n\r\n")
    for added in (b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click", b"\r\nFrom: ceo@example.com"):
        assert not verify(received.data[:header_end] + added + received.data[header_end:], signing)


def test_signing_is_off_by_default(world, sender):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 9, 0))
    world.run(at(2026, 6, 3, 8, 5))
    (received,) = world.smtp.received
    assert b"DKIM-Signature" not in received.data


@pytest.mark.parametrize(
    "change, message",
    [
        ({"DIGEST_DKIM_SELECTOR": ""}, "DIGEST_DKIM_SELECTOR: required"),
        ({"DIGEST_DKIM_KEY_FILE": ""}, "DIGEST_DKIM_KEY_FILE: required"),
        ({"DIGEST_DKIM_DOMAIN": ""}, "DIGEST_DKIM_DOMAIN: set it too"),
        ({"DIGEST_DKIM_DOMAIN": "news.example.com; h=from"}, "DIGEST_DKIM_DOMAIN: 'news.example.com; h=from' is not"),
        ({"DIGEST_DKIM_SELECTOR": "a b"}, "DIGEST_DKIM_SELECTOR: 'a b' is not a DNS label"),
        ({"DIGEST_DKIM_KEY_FILE": "/nonexistent/dkim.pem"}, "DIGEST_DKIM_KEY_FILE: cannot read /nonexistent/dkim.pem"),
        ({"key": b"not a key"}, "DIGEST_DKIM_KEY_FILE: not an unencrypted PEM private key"),
        ({"key": "ec"}, "DIGEST_DKIM_KEY_FILE: the key must be RSA"),
        ({"key": "short"}, "DIGEST_DKIM_KEY_FILE: a 512-bit key is too short"),
    ],
)
def test_a_wrong_setting_names_it_and_the_run_sends_nothing(world, signing, settings, change, message):
    for name, value in change.items():
        if name != "key":
            setattr(settings, name, value)
        elif value == "ec":
            open(settings.DIGEST_DKIM_KEY_FILE, "wb").write(pem(ec.generate_private_key(ec.SECP256R1())))
        elif value == "short":  # cryptography refuses to make one
            short = subprocess.run(
                ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"],
                check=True,
                capture_output=True,
            )
            open(settings.DIGEST_DKIM_KEY_FILE, "wb").write(short.stdout)
        else:
            open(settings.DIGEST_DKIM_KEY_FILE, "wb").write(value)
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        dkim_signer()
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 9, 0))
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        world.run(at(2026, 6, 3, 8, 5))
    assert world.smtp.received == []
    assert not Delivery.objects.filter(status=DeliveryStatus.SENT).exists()


def test_canonicalization_follows_rfc_6376_examples():
    # RFC 6376, 3.4.6: relaxed header and body of the example message.
    assert header_canonical(b"A", b" X\r\n") == b"a:X"
    assert header_canonical(b"B ", b" Y\t\r\n\tZ  \r\n") == b"b:Y Z"
    assert body_canonical(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert body_canonical(b"") == b"" and body_canonical(b"\r\n\r\n") == b""


def test_a_message_signed_here_verifies_with_a_folded_header_and_no_final_line_break(key):
    message = (
        b"From: Ann <ann@news.example.com>\r\nTo: bob@example.com\r\n"
        b"Subject: a long subject that is folded\r\n  onto a second line\r\n\r\nno final line break  "
    )
    # SMTP's DATA ends the last line (smtplib adds the CRLF): the receiver verifies that.
    assert verify(Signer(DOMAIN, SELECTOR, key).sign(message) + b"\r\n", key)


def test_dkim_keygen_makes_a_private_key_and_prints_the_record_that_verifies_its_signatures(settings, tmp_path):
    path = tmp_path / "keys" / "dkim.pem"
    path.parent.mkdir()
    out = io.StringIO()
    call_command("dkim_keygen", domain="News.Example.com", selector=SELECTOR, key_file=str(path), stdout=out)
    assert path.stat().st_mode & 0o777 == 0o600
    (line,) = [line for line in out.getvalue().splitlines() if "IN TXT" in line]
    assert line.startswith(f"{SELECTOR}._domainkey.{DOMAIN}. IN TXT ( ")
    record = "".join(re.findall(r'"([^"]*)"', line))
    assert all(len(string) <= 255 for string in re.findall(r'"([^"]*)"', line))
    # What the command printed is what DNS would serve, and the key file is what signing reads.
    settings.DIGEST_DKIM_DOMAIN, settings.DIGEST_DKIM_SELECTOR, settings.DIGEST_DKIM_KEY_FILE = (
        DOMAIN,
        SELECTOR,
        str(path),
    )
    signed = dkim_signer().sign(b"From: ann@news.example.com\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nHello\r\n")
    assert dkimpy.verify(signed, dnsfunc=lambda name, timeout=5: record.encode())
    assert f"DIGEST_DKIM_KEY_FILE={path}" in out.getvalue()

    # Run again: the key is kept (a new one would break mail signed with the published record).
    before = path.read_bytes()
    again = io.StringIO()
    call_command("dkim_keygen", domain=DOMAIN, selector=SELECTOR, key_file=str(path), stdout=again)
    assert path.read_bytes() == before and "exists: kept" in again.getvalue() and line in again.getvalue()


def test_dkim_keygen_names_what_is_missing(settings, tmp_path):
    with pytest.raises(CommandError, match="Give --selector or set DIGEST_DKIM_SELECTOR"):
        call_command("dkim_keygen", domain=DOMAIN, key_file=str(tmp_path / "k.pem"))
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(CommandError, match="bad.pem: not an unencrypted PEM private key"):
        call_command("dkim_keygen", domain=DOMAIN, selector=SELECTOR, key_file=str(tmp_path / "bad.pem"))


def test_the_editors_test_send_is_signed_too(world, signing):
    from digest.desk.previews import preview_issue, preview_send_test

    issue = world.publish("Issue one", at(2026, 6, 2, 9, 0))
    assert (
        preview_send_test(rendered=preview_issue(issue=issue, now=timezone.now()), to="editor@example.com", name="Ed")
        == 1
    )
    (received,) = world.smtp.received
    assert verify(received.data, signing)


def test_a_message_without_a_from_or_a_header_end_is_refused(key):
    from digest.exceptions import DigestError

    signer = Signer(DOMAIN, SELECTOR, key)
    with pytest.raises(DigestError, match="no From"):
        signer.sign(b"To: bob@example.com\r\n\r\nHello\r\n")
    with pytest.raises(DigestError, match="no blank line"):
        signer.sign(b"From: ann@news.example.com\r\nHello\r\n")


def test_a_verp_envelope_sender_leaves_the_signed_from_alone(world, sender, signing, settings):
    settings.DIGEST_BOUNCE_ADDRESS = "bounces@news.example.com"
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 9, 0))
    world.run(at(2026, 6, 3, 8, 5))
    (received,) = world.smtp.received
    assert received.sender.startswith("bounces+") and received.message["From"] == "News <news@example.com>"
    assert verify(received.data, signing)


def esp_reencoded(message: email.message.Message) -> bytes:
    """What anymail's Amazon SES backend does before sending raw MIME: each 8-bit part to quoted-printable or base64.

    Headers are left as they are (refold_source="none"), as a relay converting 8-bit parts would.
    """
    for part in message.walk():
        if part["Content-Transfer-Encoding"] == "8bit":
            del part["Content-Transfer-Encoding"]
            if part.get_content_maintype() == "text":
                email.encoders.encode_quopri(part)
            else:
                email.encoders.encode_base64(part)
    return message.as_bytes(policy=email.policy.default.clone(linesep="\r\n", refold_source="none"))


@pytest.mark.parametrize("path", [*SENDERS, "anymail"])
def test_every_part_is_7bit_so_an_esp_re_encoding_it_keeps_the_signature(world, signing, settings, path):
    mailer = {**world.smtp.mailer(), "BACKEND": SENDERS[path]} if path in SENDERS else {"BACKEND": ANYMAIL}
    settings.MAILERS = {**settings.MAILERS, "digest": mailer}
    world.subscribe("ada@example.com", name="Zoë Ünicode", since=at(2026, 6, 1))
    issue = world.publish("Grüße", at(2026, 6, 2, 9, 0), body="Ünïcødé text, “quotes”, עברית and 日本語.\n")
    Attachment.objects.create(issue=issue, file=ContentFile("naïve café notes\n".encode() * 20, name="notes.txt"))
    mail.outbox = []
    assert world.run(at(2026, 6, 3, 8, 5)).sent == 1
    if path == "anymail":
        (sent,) = mail.outbox
        message = sent.message()  # what anymail's raw-MIME backends serialize
    else:
        (received,) = world.smtp.received
        message = email.message_from_bytes(received.data, policy=email.policy.default.clone(refold_source="none"))
    data = message.as_bytes(policy=email.policy.default.clone(linesep="\r\n", refold_source="none"))
    assert data.isascii()
    assert {part["Content-Transfer-Encoding"] for part in message.walk() if not part.is_multipart()} <= {
        "7bit",
        "quoted-printable",
        "base64",
    }
    assert verify(data, signing)
    assert verify(esp_reencoded(message), signing)
    attachment = next(message.iter_attachments())
    assert attachment.get_content().replace("\r\n", "\n") == "naïve café notes\n" * 20


def test_confirmation_and_welcome_mails_are_signed_too(db, smtp_server, signing, settings):
    settings.SITE_URL = "https://news.example.com"
    cache.clear()  # the subscription request's rate limits
    newsletter = NewsletterFactory(name="Notes", postal_address="Notes Ltd", welcome_text="Glad you're here, Zoë.")
    sent = subscription_request(
        email="ann@example.com",
        name="Zoë",
        tz="UTC",
        choices={newsletter.pk: "weekly"},
        client="1.2.3.4",
        now=timezone.now(),
    )
    subscription = SubscriptionFactory(newsletter=newsletter, subscriber=SubscriberFactory(name="Zoë"))
    assert sent and welcome_deliver(subscriber=subscription.subscriber, newsletter=newsletter, now=timezone.now())
    confirmation, welcome = smtp_server.received
    for received in (confirmation, welcome):
        assert received.data.isascii()
        assert verify(received.data, signing)
    assert "auto-submitted" in signed_headers(confirmation.data)
    assert {"list-id", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed_headers(welcome.data))


def test_a_1024_bit_key_is_refused(settings, tmp_path):
    settings.DIGEST_DKIM_DOMAIN, settings.DIGEST_DKIM_SELECTOR = DOMAIN, SELECTOR
    settings.DIGEST_DKIM_KEY_FILE = str(tmp_path / "short.pem")
    (tmp_path / "short.pem").write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(ImproperlyConfigured, match="a 1024-bit key is too short; use 2048 bits"):
        dkim_signer()


def test_a_key_file_that_is_a_fifo_is_refused_without_waiting(settings, tmp_path):
    """Reading a FIFO waits for a writer for ever: dkim_keygen hung on one."""
    fifo = tmp_path / "dkim.pem"
    os.mkfifo(fifo)
    with pytest.raises(CommandError, match="is not a regular file"):
        call_command("dkim_keygen", domain=DOMAIN, selector=SELECTOR, key_file=str(fifo))
    settings.DIGEST_DKIM_DOMAIN, settings.DIGEST_DKIM_SELECTOR, settings.DIGEST_DKIM_KEY_FILE = (
        DOMAIN,
        SELECTOR,
        str(fifo),
    )
    with pytest.raises(ImproperlyConfigured, match="is not a regular file"):
        dkim_signer()


def test_a_key_file_others_can_read_is_warned_about(settings, signing):
    path = Path(settings.DIGEST_DKIM_KEY_FILE)
    path.chmod(0o600)
    assert check_dkim_key_file(None) == []
    path.chmod(0o644)
    [warning] = check_dkim_key_file(None)
    assert warning.id == "digest.W005" and "readable by everyone (mode 644)" in warning.msg
    err = io.StringIO()
    call_command("dkim_keygen", domain=DOMAIN, selector=SELECTOR, key_file=str(path), stdout=io.StringIO(), stderr=err)
    assert f"chmod 600 {path}" in err.getvalue()


def test_dkim_keygen_runs_with_the_settings_exported_before_the_key_exists(tmp_path):
    # The README's order: export DIGEST_DKIM_*, then make the key. manage.py runs the system
    # checks, which read the key file: they must not stop the command that makes it.
    path = tmp_path / "dkim.pem"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DIGEST_DKIM_DOMAIN": DOMAIN,
        "DIGEST_DKIM_SELECTOR": SELECTOR,
        "DIGEST_DKIM_KEY_FILE": str(path),
    }
    made = subprocess.run(
        [sys.executable, "manage.py", "dkim_keygen"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert made.returncode == 0, made.stderr
    assert path.exists() and "These settings are in place here" in made.stdout
    # And the checks pass once the key is there.
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    "name", ["Ada Lovelace", "Zoë Ñandú-Øresund, the reader whose name is long enough to fold its To line twice", ""]
)
def test_a_group_signs_each_reader_as_the_whole_message_would_be_signed(key, name, settings):
    """The header canonicalized once per group and the body hashed from canonical pieces give
    the signature of the assembled message, signed whole; dkimpy verifies it."""
    settings.DIGEST_UNSUBSCRIBE_MAILTO = "leave@news.example.com"
    signer = Signer(DOMAIN, SELECTOR, key)
    body = f"{GREETING}\n\n  Spaced   text\t\there  \n{EMAIL} {UNSUBSCRIBE_URL}\n. a dot line\n{PREFERENCES_URL}\n"
    rendered = RenderedDigest(
        newsletter=Newsletter(name="Weekly"),
        subject="Weekly: três   issues",
        text=body,
        html=f'<p>{GREETING}</p>\n<p>  <a href="{UNSUBSCRIBE_URL}">leave</a></p>\n',
        issue_ids=[1],
    )
    headers = {"List-Id": Verbatim("List-Id", '"Weekly" <weekly.news.example.com>')}
    signed = GroupMessage(
        rendered,
        headers=headers,
        from_email="Weekly <w@news.example.com>",
        envelope_from="b@news.example.com",
        reply_to="r@x.org",
        signer=signer,
    )
    for n in range(3):
        unsubscribe = f"https://x.org/u/{n}:a~b/"
        listed = f"<{unsubscribe}>, <mailto:leave@news.example.com?subject=unsubscribe%20x{n}>"
        reader = Personal(name, f"r{n}@example.com", unsubscribe, f"https://x.org/p/{n}/", listed)
        with freeze_time("2026-06-08 09:00:00"):
            data = signed.message_bytes(reader, address=reader.email, message_id=f"<{n}@x>", date="Mon, 08 Jun 2026")
            field_end = re.search(rb"\r\n(?![ \t])", data).end()
            assert data.startswith(b"DKIM-Signature:")
            assert data == signer.sign(data[field_end:])
        assert verify(data, key)
