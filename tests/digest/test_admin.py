"""Editors see what readers get: email previews, test sends, and the Delivery ledger."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from digest.models import Delivery, DeliveryStatus
from tests.digest.conftest import at
from tests.factories import IssueFactory, NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user(
        "editor", email="editor@example.com", password="pw", is_staff=True, is_superuser=True, first_name="Eda"
    )
    client.force_login(user)
    return user


def test_issue_email_preview_shows_html_and_text(client, editor):
    issue = IssueFactory(
        title="Big news", body="## Hello\n\n[docs](https://docs.example.com)", status="draft", publish_at=None
    )
    response = client.get(reverse("admin:newsletters_issue_email", args=[issue.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Subject:</strong> Big news" in page
    assert "docs &lt;https://docs.example.com&gt;" in page  # the text part, escaped in <pre>
    assert "srcdoc=" in page and "style=" in page  # the inlined HTML part
    assert "Hi Eda," in page


def test_email_preview_needs_staff(client):
    issue = IssueFactory()
    response = client.get(reverse("admin:newsletters_issue_email", args=[issue.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_send_a_test_to_me(client, editor, smtp_server):
    issue = IssueFactory(title="Big news")
    response = client.post(reverse("admin:newsletters_issue_send_test", args=[issue.pk]))
    assert response.status_code == 302
    [received] = smtp_server.received
    assert received.recipients == ["editor@example.com"]
    assert received.message["Subject"] == "[TEST] Big news"
    assert not Delivery.objects.exists()


def test_send_test_without_an_address_says_so(client, editor, smtp_server):
    editor.email = ""
    editor.save()
    issue = IssueFactory()
    response = client.post(reverse("admin:newsletters_issue_send_test", args=[issue.pk]), follow=True)
    assert "has no email address" in response.content.decode()
    assert smtp_server.received == []


def test_next_digest_preview_includes_scheduled_issues(client, editor, settings):
    newsletter = NewsletterFactory(send_time=(timezone.localtime() - datetime.timedelta(hours=1)).time())
    IssueFactory(newsletter=newsletter, title="Already out", publish_at=timezone.now() - datetime.timedelta(minutes=10))
    IssueFactory(newsletter=newsletter, title="Scheduled", publish_at=timezone.now() + datetime.timedelta(hours=2))
    IssueFactory(newsletter=newsletter, title="Old one", publish_at=timezone.now() - datetime.timedelta(days=3))
    page = client.get(reverse("admin:newsletters_newsletter_next", args=[newsletter.pk])).content.decode()
    assert "2 new issues" in page
    assert "Already out" in page and "Scheduled" in page and "Old one" not in page
    weekly = client.get(reverse("admin:newsletters_newsletter_next", args=[newsletter.pk]), {"frequency": "weekly"})
    assert weekly.status_code == 200


def test_delivery_admin_filters_and_retries_failed(client, editor):
    failed = Delivery.objects.create(
        subscription=SubscriptionFactory(),
        newsletter=NewsletterFactory(),
        window_start=at(2026, 6, 1),
        window_end=at(2026, 6, 2),
        status=DeliveryStatus.FAILED,
        attempts=3,
        last_error="550 no such user",
    )
    busy_subscription = SubscriptionFactory()
    busy = Delivery.objects.create(
        subscription=busy_subscription,
        newsletter=busy_subscription.newsletter,
        window_start=at(2026, 6, 1),
        window_end=at(2026, 6, 2),
        status=DeliveryStatus.FAILED,
    )
    Delivery.objects.create(
        subscription=busy_subscription,
        newsletter=busy_subscription.newsletter,
        window_start=at(2026, 6, 2),
        window_end=at(2026, 6, 3),
        status=DeliveryStatus.PENDING,
    )
    url = reverse("admin:digest_delivery_changelist")
    page = client.get(url, {"status__exact": "failed"}).content.decode()
    assert "550 no such user" in page
    response = client.post(url, {"action": "retry", "_selected_action": [failed.pk, busy.pk]}, follow=True)
    assert "1 delivery(ies) will be retried" in response.content.decode()
    assert "1 skipped" in response.content.decode()
    failed.refresh_from_db()
    busy.refresh_from_db()
    assert (failed.status, failed.attempts) == (DeliveryStatus.PENDING, 0)
    assert busy.status == DeliveryStatus.FAILED


def test_staff_without_permission_get_403_not_500(client):
    issue = IssueFactory()
    clerk = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)
    for url in (
        reverse("admin:newsletters_issue_preview", args=[issue.pk]),
        reverse("admin:newsletters_issue_email", args=[issue.pk]),
        reverse("admin:newsletters_newsletter_next", args=[issue.newsletter.pk]),
    ):
        assert client.get(url).status_code == 403, url
    send_test = reverse("admin:newsletters_issue_send_test", args=[issue.pk])
    assert client.post(send_test).status_code == 403


def test_the_email_previews_of_an_issue_whose_markdown_is_refused_say_why(client, editor):
    """Saved before Markdown was checked (M2): the previews answered 500."""
    issue = IssueFactory(title="Bomb", body="[" * 18_000, publish_at=timezone.now())  # in the next digest
    newsletter = issue.newsletter.pk
    for url, back in [
        (
            reverse("admin:newsletters_issue_email", args=[issue.pk]),
            reverse("admin:newsletters_issue_change", args=[issue.pk]),
        ),
        (
            reverse("admin:newsletters_newsletter_next", args=[newsletter]),
            reverse("admin:newsletters_newsletter_change", args=[newsletter]),
        ),
    ]:
        response = client.get(url, follow=True)
        assert response.status_code == 200 and response.redirect_chain == [(back, 302)]
        assert "cannot be rendered" in response.content.decode() and "too many" in response.content.decode()
