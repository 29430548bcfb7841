"""Constraints live in the database, not only in forms."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from newsletters.models import Issue, IssueStatus, Newsletter, Subscriber, Subscription
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def _refused(create) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_subscriber_email_is_unique_ignoring_case():
    SubscriberFactory(email="Ada@Example.com")
    _refused(lambda: Subscriber.objects.create(email="ada@example.COM"))


def test_one_subscription_per_subscriber_and_newsletter():
    subscription = SubscriptionFactory()
    _refused(
        lambda: Subscription.objects.create(subscriber=subscription.subscriber, newsletter=subscription.newsletter)
    )


def test_published_issue_needs_a_publish_time():
    newsletter = NewsletterFactory()
    _refused(lambda: Issue.objects.create(newsletter=newsletter, title="x", slug="x", status=IssueStatus.PUBLISHED))
    Issue.objects.create(newsletter=newsletter, title="draft", slug="draft", status=IssueStatus.DRAFT)


def test_issue_slug_unique_per_newsletter_only():
    issue = IssueFactory(slug="same")
    IssueFactory(slug="same")  # another newsletter
    _refused(lambda: IssueFactory(slug="same", newsletter=issue.newsletter))


@pytest.mark.parametrize("value", ["Evil\nBcc: victim@example.com", "Evil\rX: y"])
def test_newlines_in_header_fields_are_refused_by_the_database(value):
    newsletter = NewsletterFactory()
    _refused(lambda: IssueFactory(newsletter=newsletter, title=value))
    _refused(lambda: SubscriberFactory(name=value))
    _refused(lambda: NewsletterFactory(name=value))


def test_visible_issues_exclude_drafts_and_future_ones():
    now = timezone.now()
    newsletter = NewsletterFactory()
    shown = IssueFactory(newsletter=newsletter, publish_at=now - datetime.timedelta(minutes=1))
    IssueFactory(newsletter=newsletter, publish_at=now + datetime.timedelta(minutes=1))
    IssueFactory(newsletter=newsletter, status=IssueStatus.DRAFT, publish_at=None)
    assert list(Issue.objects.visible(now=now)) == [shown]


def test_issue_state_for_editors():
    assert IssueFactory(status=IssueStatus.DRAFT, publish_at=None).state == "draft"
    assert IssueFactory(publish_at=timezone.now() + datetime.timedelta(days=1)).state == "scheduled"
    assert IssueFactory().state == "published"


def test_an_issue_state_is_judged_at_the_moment_given():
    publish_at = datetime.datetime(2030, 3, 1, 9, 0, tzinfo=datetime.UTC)
    issue = IssueFactory(publish_at=publish_at)
    assert issue.state_at(publish_at - datetime.timedelta(seconds=1)) == "scheduled"
    assert issue.state_at(publish_at) == "published"
    assert IssueFactory(status=IssueStatus.DRAFT, publish_at=None).state_at(publish_at) == "draft"


@pytest.mark.parametrize(
    "value", ["just some text", "a@example.com, b@example.com", "Name <bad>", "x@", "group: a@example.com;"]
)
def test_from_must_be_one_address(value):
    from django.core.exceptions import ValidationError

    newsletter = NewsletterFactory.build(from_email=value)
    with pytest.raises(ValidationError) as caught:
        newsletter.full_clean()
    assert "from_email" in caught.value.message_dict


@pytest.mark.parametrize("value", ["", "news@example.com", "Weekly News <news@example.com>", '"A, B" <x@example.com>'])
def test_from_accepts_one_address_with_or_without_a_name(value):
    NewsletterFactory.build(from_email=value).full_clean()


def test_reply_to_must_be_one_address():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        NewsletterFactory.build(reply_to="a@example.com, b@example.com").full_clean()


def test_an_empty_slug_is_refused_by_the_database():
    _refused(lambda: IssueFactory(slug=""))
    _refused(lambda: NewsletterFactory(slug=""))


def test_unicode_slugs_are_valid():
    newsletter = NewsletterFactory.build(slug="новости")
    newsletter.full_clean()
    newsletter.save()
    Issue(newsletter=newsletter, title="t", slug="日本語-1", body="x").full_clean()


def test_a_new_newsletter_speaks_the_sites_language(settings):
    settings.LANGUAGE_CODE = "de"
    assert Newsletter.objects.create(name="Notizen", slug="notizen").language == "de"
    with pytest.raises(ValidationError):
        Newsletter(name="x", slug="x", language="not a tag").full_clean()
