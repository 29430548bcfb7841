"""Public archive pages show published issues only."""

import datetime

import pytest
from django.utils import timezone

from tests.factories import IssueFactory, NewsletterFactory

pytestmark = pytest.mark.django_db


def test_archive_lists_only_visible_issues(client):
    newsletter = NewsletterFactory(slug="weekly")
    IssueFactory(newsletter=newsletter, title="Shown")
    IssueFactory(newsletter=newsletter, title="Tomorrow", publish_at=timezone.now() + datetime.timedelta(days=1))
    IssueFactory(newsletter=newsletter, title="Secret draft", status="draft", publish_at=None)
    body = client.get("/n/weekly/").content.decode()
    assert "Shown" in body
    assert "Tomorrow" not in body and "Secret draft" not in body


def test_issue_page_renders_sanitized_markdown_and_hides_drafts(client):
    newsletter = NewsletterFactory(slug="weekly")
    IssueFactory(newsletter=newsletter, slug="hello", body="## Hi\n\n<script>alert(1)</script>")
    IssueFactory(newsletter=newsletter, slug="draft", status="draft", publish_at=None)
    response = client.get("/n/weekly/hello/")
    assert response.status_code == 200
    assert "<h2>Hi</h2>" in response.content.decode()
    assert "alert(1)" not in response.content.decode()
    assert client.get("/n/weekly/draft/").status_code == 404
    assert client.get("/n/nope/").status_code == 404
