"""The mails a reader gets after joining and while reading: an onboarding step, the re-confirmation question.

Each is rendered with the newsletter's templates and branding (newsletters.letters) and built
as a ReaderEmail (7-bit, DKIM-signed, the list headers and footer of every reader mail), then
sent by the digest engine's letters (digest.sending.letters), which records each one in its
ledger: this module never sends.
"""

import datetime

from django.utils import translation

from newsletters.conf import site_url
from newsletters.languages import mail_language
from newsletters.letters import Letter, letter_render, reader_message, welcome_render
from newsletters.messages import ReaderEmail
from newsletters.models import IssueStatus, OnboardingStep, Subscription
from newsletters.selectors import issues_visible
from newsletters.tokens import keep_url, preferences_url


def step_render(
    step: OnboardingStep, *, name: str, email: str, preferences_url: str, now: datetime.datetime, language: str = ""
) -> Letter:
    """Render one onboarding step (the welcome is step one): its Markdown with the latest issue linked, or an issue sent back.

    Raises MarkupError for a text that cannot be rendered, ValueError for an issue not published.
    """
    newsletter = step.newsletter
    if step.issue_id is not None:
        issue = step.issue
        if issue.status != IssueStatus.PUBLISHED or issue.publish_at is None or issue.publish_at > now:
            raise ValueError(f"the issue {issue.title!r} of step {step.position} is not published")
        return welcome_render(
            newsletter=newsletter,
            name=name,
            email=email,
            body=issue.body,
            latest=None,
            preferences_url=preferences_url,
            subject=step.subject or issue.title,
            heading=issue.title,
            issue_url=site_url(issue.get_absolute_url()),
            language=language,
        )
    return welcome_render(
        newsletter=newsletter,
        name=name,
        email=email,
        body=step.body,
        latest=issues_visible(newsletter=newsletter, now=now).first(),
        preferences_url=preferences_url,
        subject=step.subject,
        language=language,
    )


def onboarding_message(*, subscription: Subscription, step: OnboardingStep, now: datetime.datetime) -> ReaderEmail:
    """Build one onboarding step's mail to a reader. Raises MarkupError or ValueError as step_render does."""
    subscriber = subscription.subscriber
    letter = step_render(
        step,
        name=subscriber.name,
        email=subscriber.email,
        preferences_url=preferences_url(subscriber.pk),
        now=now,
        language=subscriber.language,
    )
    return reader_message(subscription, letter)


def reconfirm_message(*, subscription: Subscription, pause_at: datetime.datetime) -> ReaderEmail:
    """Build the "still want this?" mail: one link keeps the newsletter coming, silence pauses it at `pause_at`.

    In the reader's language, else the newsletter's (newsletters.languages.mail_language).
    """
    newsletter, subscriber = subscription.newsletter, subscription.subscriber
    with translation.override(mail_language(reader=subscriber.language, newsletter=newsletter.language)):
        return _reconfirm_message(subscription=subscription, pause_at=pause_at)


def _reconfirm_message(*, subscription: Subscription, pause_at: datetime.datetime) -> ReaderEmail:
    newsletter, subscriber = subscription.newsletter, subscription.subscriber
    context = {
        "newsletter": newsletter,
        "name": subscriber.name,
        "email": subscriber.email,
        "archive_url": site_url(newsletter.get_absolute_url()),
        "preferences_url": preferences_url(subscriber.pk),
        "keep_url": keep_url(subscription.pk),
        "pause_at": pause_at,
    }
    return reader_message(subscription, letter_render("reconfirm", context, newsletter=newsletter))
