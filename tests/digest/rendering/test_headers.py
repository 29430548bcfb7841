"""One set of list headers, the same raw bytes on every path a digest can leave by.

Read raw: a header that reads right once decoded may still be RFC 2047 encoded on the
wire, where Gmail and Yahoo look for the List-Unsubscribe URI and find none.
"""

import io
import re

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from digest.conf import digest_settings
from digest.models import Delivery
from digest.rendering.headers import list_headers
from newsletters.models import Newsletter
from newsletters.tokens import TokenInvalid, token_make, token_read
from tests.digest.conftest import at

pytestmark = pytest.mark.django_db

LIST_HEADERS = (
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "List-Archive",
    "List-Help",
    "List-Post",
    "Archived-At",
    "Feedback-ID",
    "Precedence",
)
SITE = "https://newsletters.a-rather-long-domain-name-for-folding.example.com"
CONSOLE = io.StringIO()

PATHS = {
    "fast path": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"},
    "SMTP subclass": {"BACKEND": "tests.smtp.SigningEmailBackend"},
    "anymail": {"BACKEND": "anymail.backends.test.EmailBackend"},
    "file": {"BACKEND": "django.core.mail.backends.filebased.EmailBackend"},
    "console": {"BACKEND": "django.core.mail.backends.console.EmailBackend", "OPTIONS": {"stream": CONSOLE}},
}


def raw_fields(data: bytes) -> dict[str, bytes]:
    """Each list header field as it is on the wire: name, value and continuation lines, CRLF line ends."""
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    header = data[: data.index(b"\r\n\r\n") + 2]
    fields = re.findall(rb"[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", header)
    return {
        name: next(field for field in fields if field.lower().startswith(name.lower().encode() + b":"))
        for name in LIST_HEADERS
    }


def send_through(path: str, world, settings, tmp_path) -> bytes:
    """Send one digest to ada through a path; return the message's bytes as that path wrote them."""
    mailer = {**PATHS[path]}
    if path in ("fast path", "SMTP subclass"):
        mailer["OPTIONS"] = world.smtp.mailer()["OPTIONS"]
    if path == "file":
        mailer["OPTIONS"] = {"file_path": str(tmp_path / "outbox")}
    settings.MAILERS = {**settings.MAILERS, "digest": mailer}
    mail.outbox = []
    CONSOLE.seek(0)
    CONSOLE.truncate()
    assert world.run(at(2026, 6, 3, 8, 5)).sent == 1
    if path in ("fast path", "SMTP subclass"):
        (received,) = world.smtp.received
        return received.data
    if path == "anymail":
        (message,) = mail.outbox
        # What the params carry to an ESP's API: the unfolded value, never encoded.
        assert message.anymail_test_params["extra_headers"]["List-Unsubscribe"].startswith(f"<{SITE}/u/")
        # What an ESP taking raw MIME (Amazon SES) sends: anymail serializes message().
        return message.message().as_bytes()
    if path == "file":
        (written,) = (tmp_path / "outbox").iterdir()
        return written.read_bytes()
    return CONSOLE.getvalue().encode()


@pytest.fixture
def digest(world, settings):
    settings.SITE_URL = SITE
    settings.DIGEST_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    settings.DIGEST_FEEDBACK_ID_SENDER = "examplenews"
    Newsletter.objects.filter(pk=world.newsletter.pk).update(name='Notes <other.list.example.org> "weekly"')
    world.subscribe("ada@example.com", name="Zoë Ünicode", since=at(2026, 6, 1))
    return world.publish("Issue one", at(2026, 6, 2, 9, 0), slug="issue-one")


@pytest.mark.parametrize("path", PATHS)
def test_every_path_writes_the_list_headers_byte_for_byte(digest, world, settings, tmp_path, path):
    fields = raw_fields(send_through(path, world, settings, tmp_path))
    (delivery,) = Delivery.objects.all()
    subscription_id = delivery.subscription_id
    unsubscribe = f"{SITE}/u/"
    assert fields["List-Unsubscribe"].startswith(f"List-Unsubscribe: <{unsubscribe}".encode())
    # Folded at the space after the comma, never inside a URI, never encoded; the mailto's
    # subject carries the URL's own signed token, so a mailbox reader can check it.
    found = re.fullmatch(
        (
            rf"List-Unsubscribe: <{re.escape(unsubscribe)}([^>\s/]+)/>,\r\n"
            r" <mailto:unsubscribe@example.com\?subject=unsubscribe%20\1>\r\n"
        ).encode(),
        fields["List-Unsubscribe"],
    )
    assert found, fields["List-Unsubscribe"]
    assert token_read(found.group(1).decode(), purpose="unsubscribe", kind=int) == subscription_id
    newsletter = f"{SITE}/n/weekly/"
    assert {name: value for name, value in fields.items() if name != "List-Unsubscribe"} == {
        "List-Unsubscribe-Post": b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        "List-Id": b'List-Id: "Notes <other.list.example.org> \\"weekly\\""\r\n'
        b" <weekly.newsletters.a-rather-long-domain-name-for-folding.example.com>\r\n",
        "List-Archive": f"List-Archive: <{newsletter}>\r\n".encode(),
        "List-Help": f"List-Help: <{SITE}/>\r\n".encode(),
        "List-Post": b"List-Post: NO\r\n",
        "Archived-At": f"Archived-At: <{newsletter}issue-one/>\r\n".encode(),
        "Feedback-ID": f"Feedback-ID: {digest.pk}:{world.newsletter.pk}:digest:examplenews\r\n".encode(),
        "Precedence": b"Precedence: bulk\r\n",
    }


def test_a_digest_of_several_issues_has_no_archived_at(world, settings):
    settings.SITE_URL = "https://news.example.com"
    older = world.publish("Issue one", at(2026, 6, 2, 9, 0))
    newer = world.publish("Issue two", at(2026, 6, 2, 10, 0))
    headers = list_headers(newsletter=world.newsletter, issue_ids=[older.pk, newer.pk])
    assert "Archived-At" not in headers
    # Without DIGEST_FEEDBACK_ID_SENDER the sender id is the site's host; the campaign the newest issue.
    assert headers["Feedback-ID"] == f"{newer.pk}:{world.newsletter.pk}:digest:news.example.com"


def test_a_list_id_that_is_not_a_dotted_name_holds_the_group(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 9, 0))
    Newsletter.objects.filter(pk=world.newsletter.pk).update(list_id="other list <x@y>")
    summary = world.run(at(2026, 6, 3, 8, 5))
    assert (summary.sent, summary.held) == (0, 1)
    assert "List-Id" in Delivery.objects.get().last_error


@pytest.mark.parametrize(
    "name, value",
    [
        ("DIGEST_UNSUBSCRIBE_MAILTO", "Unsubscribe <unsubscribe@example.com>"),
        ("DIGEST_UNSUBSCRIBE_MAILTO", "a@example.com, b@example.com"),
        ("DIGEST_UNSUBSCRIBE_MAILTO", "unsub?x=1@example.com"),
        ("DIGEST_FEEDBACK_ID_SENDER", "news:letters"),
    ],
)
def test_a_header_setting_that_is_not_one_value_is_named(settings, name, value):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        digest_settings.check_all()


def test_a_slug_in_another_script_makes_an_ascii_list_id(world, settings):
    settings.SITE_URL = "https://news.example.com"
    Newsletter.objects.filter(pk=world.newsletter.pk).update(name="Новости", slug="новости")
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 9, 0))
    assert world.run(at(2026, 6, 3, 8, 5)).sent == 1
    (received,) = world.smtp.received
    assert raw_fields(received.data)["List-Id"].endswith(b" <xn--b1amnebsh.news.example.com>\r\n")


@pytest.mark.parametrize(
    "subject",
    [
        "unsubscribe 42",  # the unsigned shape this header had before
        "unsubscribe " + token_make(purpose="preferences", value=42),  # signed, for another purpose
        "unsubscribe " + token_make(purpose="unsubscribe", value=42)[:-2] + "xx",  # tampered
    ],
)
def test_an_unsigned_or_forged_mailto_subject_names_nobody(subject):
    with pytest.raises(TokenInvalid):
        token_read(subject.removeprefix("unsubscribe "), purpose="unsubscribe", kind=int)
