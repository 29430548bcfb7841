"""One contract for both ways a digest leaves: the fast path and a backend's own send_messages().

The fast path writes prebuilt bytes to exactly Django's SMTP backend's connection; any
other backend, a subclass included (one that signs with DKIM, say), gets
EmailMultiAlternatives through its own send_messages(). Readers must not tell them apart.
"""

import pytest
from django.core.files import File

from digest.models import Delivery, DeliveryStatus
from newsletters.models import Attachment, Newsletter
from tests.digest.conftest import at, body, mailto_unsubscribe_names

SENDERS = {
    "fast path": "django.core.mail.backends.smtp.EmailBackend",
    "send_messages of a subclass": "tests.smtp.SigningEmailBackend",
}


@pytest.fixture(params=SENDERS)
def sender(request, world, settings):
    """Send digests through one of the two paths, to the same real SMTP server."""
    settings.MAILERS = {**settings.MAILERS, "digest": {**world.smtp.mailer(), "BACKEND": SENDERS[request.param]}}
    return request.param


def test_the_backend_decides_the_path(world, sender):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    # A subclass's own send_messages() ran for every message; the fast path bypasses it.
    assert (message["X-Signed-By"] == "tests") == (sender != "fast path")


def test_a_digest_is_complete_either_way(world, sender, settings, tmp_path):
    settings.SITE_URL = "https://news.example.com"
    settings.DIGEST_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    ada = world.subscribe("ada@example.com", name="Zoë Ünicode", since=at(2026, 6, 1))
    issue = world.publish("Issue one", at(2026, 6, 2, 9, 0), body="See [docs](https://docs.example.com).")
    upload = tmp_path / "report.pdf"
    upload.write_bytes(b"%PDF-1.4 report")
    with upload.open("rb") as handle:
        Attachment.objects.create(issue=issue, file=File(handle, name="report.pdf"))
    assert world.run(at(2026, 6, 3, 8, 5)).sent == 1
    (message,) = world.inbox("ada@example.com")
    assert message["Subject"] == "Issue one"
    assert message["From"] == "News <news@example.com>"
    assert message["To"] == "Zoë Ünicode <ada@example.com>"
    assert message["Reply-To"] == "editors@example.com"
    assert message["List-Id"] == "Weekly Notes <weekly.news.example.com>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] == Delivery.objects.get(subscription=ada).message_id
    unsubscribe = message["List-Unsubscribe"].split(",")[0].strip("<>")
    assert unsubscribe.startswith("https://news.example.com/u/")
    assert mailto_unsubscribe_names(message["List-Unsubscribe"]) == ada.pk
    for subtype in ("plain", "html"):
        assert "Hi Zoë Ünicode," in body(message, subtype) and unsubscribe in body(message, subtype)
        assert "You receive Weekly Notes at ada@example.com." in body(message, subtype)  # the footer names it
    assert [(a.get_filename(), a.get_content()) for a in message.iter_attachments()] == [
        ("report.pdf", b"%PDF-1.4 report")
    ]


def test_replies_are_classified_the_same_either_way(world, sender):
    world.subscribe("gone@example.com", since=at(2026, 6, 1))
    world.subscribe("later@example.com", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.replies["gone@example.com"] = "550 5.1.1 No such user"
    world.smtp.handler.replies["later@example.com"] = "451 4.7.1 Try again later"
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed, summary.deferred) == (1, 1, 1)
    statuses = dict(Delivery.objects.values_list("subscription__subscriber__email", "status"))
    assert statuses == {
        "gone@example.com": DeliveryStatus.FAILED,
        "later@example.com": DeliveryStatus.DEFERRED,
        "bob@example.com": DeliveryStatus.SENT,
    }


def test_a_bad_from_holds_the_group_either_way(world, sender):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    Newsletter.objects.filter(pk=world.newsletter.pk).update(from_email="not an address")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed, summary.held) == (0, 0, 1)
    assert world.inbox("ada@example.com") == []
