"""Local mail capture: a real SMTP server stores what Django sends; DEBUG pages show it."""

import pytest
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from newsletters.devmail import capture_server_start
from tests.smtp import free_port


@pytest.fixture
def capture(settings):
    port = free_port()
    controller = capture_server_start(directory=settings.LOCAL_MAIL_DIR, port=port)
    settings.MAILERS = {"default": {"OPTIONS": {"host": "127.0.0.1", "port": port}}}
    yield settings.LOCAL_MAIL_DIR
    controller.stop()


def _send():
    message = EmailMultiAlternatives(
        subject="Grüße from the demo", body="Plain part", from_email="news@example.com", to=["Zoë <zoe@example.com>"]
    )
    message.attach_alternative("<p>HTML <b>part</b></p>", "text/html")
    message.attach("notes.txt", "attached text", "text/plain")
    assert message.send() == 1


def test_sent_mail_is_stored_and_listed(client, settings, capture):
    settings.DEBUG = True
    _send()
    files = list(capture.glob("*.eml"))
    assert len(files) == 1
    listing = client.get(reverse("dev:outbox")).content.decode()
    assert "Grüße from the demo" in listing
    detail = client.get(reverse("dev:outbox_message", args=[files[0].name])).content.decode()
    assert "Plain part" in detail
    assert 'srcdoc="&lt;p&gt;HTML &lt;b&gt;part&lt;/b&gt;&lt;/p&gt;' in detail
    assert "notes.txt" in detail
    assert "zoe@example.com" in detail


def test_outbox_is_hidden_without_debug(client, settings, capture):
    settings.DEBUG = False
    _send()
    name = next(capture.glob("*.eml")).name
    assert client.get(reverse("dev:outbox")).status_code == 404
    assert client.get(reverse("dev:outbox_message", args=[name])).status_code == 404


def test_outbox_refuses_names_it_did_not_write(client, settings, capture):
    settings.DEBUG = True
    (capture / "secret.txt").write_text("no")
    assert client.get(reverse("dev:outbox_message", args=["secret.txt"])).status_code == 404
    assert client.get("/dev/outbox/..%2Fsettings.py/").status_code == 404
