"""The welcome mail: on confirming, each newly joined newsletter's welcome text (its onboarding step one), with the latest issue linked.

It is a letter (digest.sending.letters): the next run sends it, recorded in the ledger.
"""

import datetime

import pytest
from django.utils import timezone

from newsletters.models import IssueStatus, SubscriptionStatus
from newsletters.services import subscription_confirm
from newsletters.tokens import token_make
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.letters import letters_deliver

pytestmark = pytest.mark.django_db


def confirm(email: str, choices: dict, *, now=None):
    """Confirm, then the run's letters: the welcome goes out with the next run."""
    now = now or timezone.now()
    payload = {"e": email, "n": "Ann", "tz": "UTC", "c": {str(pk): f for pk, f in choices.items()}}
    payload["iat"] = int(now.timestamp()) - 1
    subscriber = subscription_confirm(token=token_make(purpose="confirm", value=payload), now=now)
    letters_deliver(now)
    return subscriber


@pytest.fixture
def default_only(smtp_server):
    """The real SMTP server as every mailer (welcome letters go through the digest mailer, as digests do)."""
    return smtp_server


def test_confirming_sends_the_welcome_text_with_the_latest_issue(default_only, settings):
    settings.SITE_URL = "https://news.example.org"
    newsletter = NewsletterFactory(
        name="Weekly Notes",
        slug="weekly",
        from_email="Weekly Notes <notes@example.org>",
        reply_to="editors@example.org",
        welcome_text="Glad you're here.\n\n- We write **weekly**\n- <script>alert(1)</script>[bad](javascript:x)",
    )
    IssueFactory(
        newsletter=newsletter, title="Older", slug="older", publish_at=timezone.now() - datetime.timedelta(days=9)
    )
    IssueFactory(
        newsletter=newsletter, title="Latest", slug="latest", publish_at=timezone.now() - datetime.timedelta(days=2)
    )
    IssueFactory(newsletter=newsletter, title="Draft", status=IssueStatus.DRAFT, publish_at=None)
    IssueFactory(newsletter=newsletter, title="Scheduled", publish_at=timezone.now() + datetime.timedelta(days=2))
    subscriber = confirm("ann@example.com", {newsletter.pk: "weekly"})
    [received] = default_only.received
    message = received.message
    assert received.recipients == ["ann@example.com"]
    assert message["Subject"] == "Welcome to Weekly Notes"
    assert message["From"] == "Weekly Notes <notes@example.org>" and message["Reply-To"] == "editors@example.org"
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Hello Ann," in text and "Glad you're here." in text and "- We write *weekly*" in text
    assert "The latest issue: Latest\nhttps://news.example.org/n/weekly/latest/" in text
    assert "<strong>weekly</strong>" in html and 'href="https://news.example.org/n/weekly/latest/"' in html
    assert "alert" not in html and "javascript:" not in html
    assert "https://news.example.org/p/" in text and "Draft" not in text and "Scheduled" not in text
    assert subscriber.subscriptions.get().status == SubscriptionStatus.ACTIVE


def test_no_welcome_when_the_text_is_empty_or_the_reader_was_already_in(default_only):
    quiet = NewsletterFactory(welcome_text="  \n")
    chatty = NewsletterFactory(name="Chatty", welcome_text="Hi!")
    start = timezone.now()
    confirm("bob@example.com", {quiet.pk: "daily"}, now=start)
    assert default_only.received == []
    later = start + datetime.timedelta(seconds=10)
    subscriber = confirm("bob@example.com", {quiet.pk: "daily", chatty.pk: "weekly"}, now=later)
    assert [r.message["Subject"] for r in default_only.received] == ["Welcome to Chatty"]
    confirm("bob@example.com", {chatty.pk: "daily"}, now=later + datetime.timedelta(seconds=10))
    assert len(default_only.received) == 1  # already reading Chatty: a frequency change, not a welcome
    assert subscriber.subscriptions.count() == 2


def test_a_reader_coming_back_is_welcomed_again(default_only):
    newsletter = NewsletterFactory(name="Notes", welcome_text="Welcome back or not.")
    subscription = SubscriptionFactory(
        newsletter=newsletter,
        status=SubscriptionStatus.UNSUBSCRIBED,
        subscriber=SubscriberFactory(
            email="dee@example.com", confirmed_at=timezone.now() - datetime.timedelta(days=30)
        ),
    )
    confirm("dee@example.com", {newsletter.pk: "weekly"})
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert [r.message["Subject"] for r in default_only.received] == ["Welcome to Notes"]


def test_a_refused_welcome_does_not_undo_the_subscription(smtp_server):
    smtp_server.handler.replies["cy@example.com"] = "550 5.1.1 No such user"
    newsletter = NewsletterFactory(welcome_text="Hello!")
    subscriber = confirm("cy@example.com", {newsletter.pk: "daily"})
    assert subscriber.subscriptions.get().status == SubscriptionStatus.ACTIVE
    assert smtp_server.received == []
