"""The editor admin: staff only, issue preview, publish and schedule actions, CSV export."""

import csv
import datetime
import io

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from newsletters.models import Issue, IssueStatus
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    "url_name",
    ["admin:newsletters_issue_changelist", "admin:newsletters_subscriber_changelist", "admin:index"],
)
def test_admin_needs_staff_login(client, url_name):
    url = reverse(url_name)
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    reader = get_user_model().objects.create_user("reader", password="pw", is_staff=False)
    client.force_login(reader)
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_preview_needs_staff_login(client):
    issue = IssueFactory()
    response = client.get(reverse("admin:newsletters_issue_preview", args=[issue.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_changelists_and_forms_load_for_editors(client, editor):
    SubscriptionFactory()
    IssueFactory()
    for name in ["newsletter", "issue", "subscriber", "subscription"]:
        assert client.get(reverse(f"admin:newsletters_{name}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:newsletters_{name}_add")).status_code == 200
    response = client.get(reverse("admin:newsletters_subscriber_changelist"), {"q": "reader"})
    assert response.status_code == 200


def test_preview_shows_sanitized_rendering(client, editor):
    issue = IssueFactory(
        body="## Hello\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2))", status="draft", publish_at=None
    )
    response = client.get(reverse("admin:newsletters_issue_preview", args=[issue.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<h2>Hello</h2>" in body
    assert "alert(1)" not in body and "javascript:" not in body


def test_adding_an_issue_records_the_author(client, editor):
    newsletter = NewsletterFactory()
    response = client.post(
        reverse("admin:newsletters_issue_add"),
        {
            "newsletter": newsletter.pk,
            "title": "Hello",
            "slug": "hello",
            "body": "Text",
            "status": "draft",
            "attachments-TOTAL_FORMS": "0",
            "attachments-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Issue.objects.get().author == editor


def test_title_with_newline_is_refused_in_the_form(client, editor):
    newsletter = NewsletterFactory()
    response = client.post(
        reverse("admin:newsletters_issue_add"),
        {
            "newsletter": newsletter.pk,
            "title": "Hello\nBcc: victim@example.com",
            "slug": "hello",
            "body": "Text",
            "status": "draft",
            "attachments-TOTAL_FORMS": "0",
            "attachments-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "Line breaks are not allowed here." in response.content.decode()
    assert not Issue.objects.exists()


def test_publish_now_action_asks_first(client, editor):
    issue = IssueFactory(status=IssueStatus.DRAFT, publish_at=None)
    url = reverse("admin:newsletters_issue_changelist")
    response = client.post(url, {"action": "publish_now", "_selected_action": [issue.pk]})
    assert response.status_code == 200 and "Publish these issues now?" in response.content.decode()
    issue.refresh_from_db()
    assert issue.status == IssueStatus.DRAFT
    client.post(url, {"action": "publish_now", "_selected_action": [issue.pk], "confirmed": "yes"})
    issue.refresh_from_db()
    assert issue.status == IssueStatus.PUBLISHED
    assert issue.publish_at <= timezone.now()


def test_schedule_action_asks_for_a_future_time(client, editor):
    issue = IssueFactory(status=IssueStatus.DRAFT, publish_at=None)
    url = reverse("admin:newsletters_issue_changelist")
    response = client.post(url, {"action": "schedule", "_selected_action": [issue.pk]})
    assert response.status_code == 200 and 'name="publish_at"' in response.content.decode()
    past = (timezone.localtime() - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    response = client.post(url, {"action": "schedule", "_selected_action": [issue.pk], "publish_at": past})
    assert "Choose a time in the future" in response.content.decode()
    issue.refresh_from_db()
    assert issue.status == IssueStatus.DRAFT
    future = timezone.localtime() + datetime.timedelta(days=2)
    client.post(
        url, {"action": "schedule", "_selected_action": [issue.pk], "publish_at": future.strftime("%Y-%m-%d %H:%M")}
    )
    issue.refresh_from_db()
    assert issue.state == "scheduled"
    assert issue.publish_at == future.replace(second=0, microsecond=0)


def test_subscription_csv_export_matches_import_columns_and_defuses_formulas(client, editor):
    subscriber = SubscriberFactory(email="ada@example.com", name='=HYPERLINK("http://evil")')
    subscription = SubscriptionFactory(subscriber=subscriber, newsletter=NewsletterFactory(slug="weekly"))
    response = client.post(
        reverse("admin:newsletters_subscription_changelist"),
        {"action": "export_subscriptions_csv", "_selected_action": [subscription.pk]},
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["email", "name", "timezone", "newsletter", "frequency", "status"],
        ["ada@example.com", '\'=HYPERLINK("http://evil")', "UTC", "weekly", "daily", "active"],
    ]


def test_subscriber_csv_export(client, editor):
    subscriber = SubscriberFactory(email="bob@example.com", name="Bob")
    response = client.post(
        reverse("admin:newsletters_subscriber_changelist"),
        {"action": "export_subscribers_csv", "_selected_action": [subscriber.pk]},
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["email", "name", "timezone", "status", "confirmed_at"]
    assert rows[1][:4] == ["bob@example.com", "Bob", "UTC", "active"]


def _issue_form(newsletter, **overrides):
    return {
        "newsletter": newsletter.pk,
        "title": "Hello",
        "slug": "hello",
        "body": "Text",
        "status": "published",
        "publish_at": "",
        "publish_at_tz": "UTC",
        "attachments-TOTAL_FORMS": "0",
        "attachments-INITIAL_FORMS": "0",
    } | overrides


def test_publishing_with_a_past_or_empty_time_means_now(client, editor):
    newsletter = NewsletterFactory()
    before = timezone.now()
    past = timezone.localtime() - datetime.timedelta(days=2)
    for slug, when in [("one", ""), ("two", past.strftime("%Y-%m-%dT%H:%M"))]:
        response = client.post(
            reverse("admin:newsletters_issue_add"), _issue_form(newsletter, slug=slug, publish_at=when)
        )
        issue = Issue.objects.get(slug=slug)
        assert response["Location"] == reverse("admin:newsletters_issue_publish", args=[issue.pk])
        client.post(response["Location"])
        issue.refresh_from_db()
        assert issue.state == "published" and issue.publish_at >= before


def test_publish_time_of_a_sent_issue_is_read_only(client, editor):
    issue = IssueFactory()
    page = client.get(reverse("admin:newsletters_issue_change", args=[issue.pk])).content.decode()
    assert 'name="publish_at"' not in page
    scheduled = IssueFactory(publish_at=timezone.now() + datetime.timedelta(days=1))
    page = client.get(reverse("admin:newsletters_issue_change", args=[scheduled.pk])).content.decode()
    assert 'name="publish_at"' in page
