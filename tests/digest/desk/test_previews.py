"""The issue form's live preview: the same render as a real send, inline warnings, staff-only, CSRF-protected."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from digest.desk.previews import preview_warnings
from digest.rendering.content import digest_render
from newsletters.models import Attachment, Issue
from tests.factories import IssueFactory, NewsletterFactory

pytestmark = pytest.mark.django_db
URL_NAME = "admin:newsletters_issue_live_preview"


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def preview(client, **data):
    return client.post(reverse(URL_NAME), data)


def test_the_preview_is_the_digest_a_real_send_renders(client, editor):
    newsletter = NewsletterFactory(name="Notes")
    body = "## Hello\n\nSome **bold** text and a [link](https://example.com/a).\n"
    response = preview(client, newsletter=newsletter.pk, title="First light", slug="first-light", body=body)
    assert response.status_code == 200
    data = response.json()
    issue = Issue(pk=0, newsletter=newsletter, title="First light", slug="first-light", body=body)
    now = timezone.now()
    real = digest_render(
        newsletter=newsletter, issues=[issue], window_start=now - datetime.timedelta(days=1), window_end=now
    )
    assert data["subject"] == real.subject
    assert "<strong" in data["html"] and "style=" in data["html"]  # through premailer: CSS inlined
    assert "First light" in data["html"] and "https://example.com/a" in data["html"]
    assert "*bold*" in data["text"] and "link <https://example.com/a>" in data["text"]
    assert data["warnings"] == []
    assert not Issue.objects.exists()  # nothing saved


def test_hostile_markdown_warns_and_never_reaches_the_html(client, editor):
    newsletter = NewsletterFactory()
    body = '[click me](javascript:alert(1))\n\n<script>alert(2)</script>\n\n<a href="data:text/html,x">d</a>'
    data = preview(client, newsletter=newsletter.pk, title="T", body=body).json()
    assert "javascript:" not in data["html"] and "alert(" not in data["html"] and "data:text" not in data["html"]
    joined = " ".join(data["warnings"])
    assert "“click me” goes to “javascript:alert(1)”, which is not an http(s) address" in joined
    assert "data:text/html,x" in joined


def test_warnings_for_images_tables_and_files():
    wide = (
        "| "
        + " | ".join(f"Column number {i}" for i in range(6))
        + " |\n|"
        + "---|" * 6
        + "\n| "
        + " | ".join("a long cell value" for _ in range(6))
        + " |\n"
    )
    narrow = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    body = f"![](https://example.com/x.png)\n\n![A chart](https://example.com/y.png)\n\n{narrow}\n\n{wide}"
    sizes = [("small.pdf", 1000), ("huge.zip", 11 * 1024 * 1024)]
    warnings = [w.replace("\xa0", " ") for w in preview_warnings(body=body, attachment_sizes=sizes)]
    assert any("x.png has no alt text" in w for w in warnings)
    assert not any("y.png" in w for w in warnings)
    assert [w for w in warnings if w.startswith("Table")][0].startswith("Table 2 is about")
    assert any("huge.zip is 11.0 MB, over the 10.0 MB limit" in w for w in warnings)
    assert any("readers get links to them instead" in w for w in warnings)
    assert (
        preview_warnings(body="Plain text, [ok](https://x.org) and [mail](mailto:a@b.org).", attachment_sizes=[]) == []
    )


def test_an_existing_issue_keeps_its_files_in_the_preview(client, editor, settings):
    settings.DIGEST_ATTACHMENT_MAX_BYTES = 10
    issue = IssueFactory()
    Attachment.objects.create(issue=issue, file=ContentFile(b"x" * 100, name="report.pdf"))
    data = preview(client, newsletter=issue.newsletter_id, issue=issue.pk, title="T", body="Hi").json()
    assert "report.pdf" in data["html"]  # linked, since it is over the attachment budget
    assert any("add up to 100 bytes" in w.replace("\xa0", " ") for w in data["warnings"])


def test_bad_requests_get_a_clear_error(client, editor):
    assert client.get(reverse(URL_NAME)).status_code == 405
    response = preview(client, newsletter="", title="T", body="x")
    assert response.status_code == 400 and "Choose a newsletter" in response.json()["error"]
    response = preview(client, newsletter=NewsletterFactory().pk, title="T", body="x", files="[[1]")
    assert response.status_code == 400 and "files" in response.json()["error"]


def test_the_endpoint_checks_csrf_and_rights():
    newsletter = NewsletterFactory()
    client = Client(enforce_csrf_checks=True)
    anonymous = client.post(reverse(URL_NAME), {"newsletter": newsletter.pk, "body": "x"})
    assert anonymous.status_code == 403  # no CSRF token, no session: refused before anything renders
    user = get_user_model().objects.create_user("newbie", password="pw", is_staff=True)
    client.force_login(user)
    assert client.post(reverse(URL_NAME), {"newsletter": newsletter.pk, "body": "x"}).status_code == 403  # no token
    client.get(reverse("admin:index"))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    data = {"newsletter": newsletter.pk, "body": "x", "csrfmiddlewaretoken": token}
    assert client.post(reverse(URL_NAME), data).status_code == 403  # staff, but no right to write issues
    user.user_permissions.add(Permission.objects.get(codename="add_issue"))
    client.force_login(get_user_model().objects.get(pk=user.pk))
    token = client.cookies["csrftoken"].value
    data["csrfmiddlewaretoken"] = token
    assert client.post(reverse(URL_NAME), data).status_code == 200


def test_an_issue_too_long_for_gmails_clip_warns_with_its_size(client, editor):
    newsletter = NewsletterFactory()
    body = "".join(
        f"## Part {n}\n\n" + "A sentence with a [link](https://example.com/a) in it. " * 20 + "\n\n" for n in range(60)
    )
    data = preview(client, newsletter=newsletter.pk, title="Long", body=body).json()
    [warning] = [w.replace("\xa0", " ") for w in data["warnings"] if "Gmail" in w]
    assert re.match(r"This issue makes an email with [0-9]{3} KB of HTML. Gmail shows only the first 100 KB", warning)
    assert "Read the rest online" in data["html"] and len(data["html"].encode()) < 100_000


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        ({"newsletter": "abc"}, 400, "'abc' is not an id"),
        ({"issue": "abc"}, 400, "'abc' is not an id"),
        ({"issue": "9" * 40}, 400, "is not an id"),
        ({"newsletter": "١"}, 400, "is not an id"),  # an Arabic-Indic digit: int() would take it
        ({"slug": "with space"}, 200, ""),
        ({"slug": "a/b"}, 200, ""),
        ({"slug": "../../x"}, 200, ""),
        ({"body": "[" * 18_000}, 400, "without their closing pair"),
    ],
)
def test_odd_ids_slugs_and_bodies_get_an_answer_not_a_500(client, editor, data, status, says):
    """L4: these were 500s (ValueError on the ids, NoReverseMatch on the slug); M2: the body a time-out."""
    newsletter = NewsletterFactory(name="Notes")
    response = preview(client, **({"newsletter": newsletter.pk, "title": "T", "slug": "t", "body": "Hi."} | data))
    assert response.status_code == status
    assert says in response.json().get("error", "")
    if status == 200:
        assert "/n/" in response.json()["html"] and not Issue.objects.exists()
