"""The mails a reader gets after joining and while reading: an onboarding step, the re-confirmation question.

Each is built here as a ReaderEmail (7-bit, DKIM-signed, the list headers and footer of every
reader mail) and sent by the digest engine's letters (digest.sending.letters), which records
each one in its ledger: this module never sends.
"""

import datetime

from django.template.loader import render_to_string

from newsletters.conf import site_url
from newsletters.emails import PREHEADER_LENGTH, email_html
from newsletters.markup import html_excerpt, html_for_email, markdown_to_html
from newsletters.messages import ReaderEmail, Verbatim, list_id_header
from newsletters.models import IssueStatus, OnboardingStep, Subscription
from newsletters.plaintext import html_to_text
from newsletters.selectors import issues_visible
from newsletters.tokens import keep_url, preferences_url, unsubscribe_url


def reader_headers(subscription: Subscription) -> dict[str, Verbatim]:
    """A reader mail's list headers: the newsletter's List-Id and the reader's one-click unsubscribe.

    Raises ValueError for a List-Id that cannot be written (an editor's; digests are held for it too).
    """
    return {
        "List-Unsubscribe": Verbatim("List-Unsubscribe", f"<{unsubscribe_url(subscription.pk)}>"),
        "List-Unsubscribe-Post": Verbatim("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        "List-Id": Verbatim("List-Id", list_id_header(subscription.newsletter)),
    }


def _letter(subscription: Subscription, *, template: str, subject: str, context: dict) -> ReaderEmail:
    newsletter, subscriber = subscription.newsletter, subscription.subscriber
    context = {
        "newsletter": newsletter,
        "name": subscriber.name,
        "email": subscriber.email,
        "archive_url": site_url(newsletter.get_absolute_url()),
        "preferences_url": preferences_url(subscriber.pk),
        **context,
    }
    subject = subject or " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    message = ReaderEmail(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        from_email=newsletter.from_email or None,
        to=[subscriber.email],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=reader_headers(subscription),
    )
    message.attach_alternative(email_html(f"emails/{template}.html", context), "text/html")
    return message


def onboarding_message(*, subscription: Subscription, step: OnboardingStep, now: datetime.datetime) -> ReaderEmail:
    """Build one onboarding step's mail to a reader: its Markdown with the latest issue linked, or an issue sent back.

    Raises MarkupError for a text that cannot be rendered, ValueError for an issue not published.
    """
    newsletter = subscription.newsletter
    if step.issue_id is not None:
        issue = step.issue
        if issue.status != IssueStatus.PUBLISHED or issue.publish_at is None or issue.publish_at > now:
            raise ValueError(f"the issue {issue.title!r} of step {step.position} is not published")
        body_html = markdown_to_html(issue.body)
        latest, subject = None, step.subject or issue.title
        heading, issue_url = issue.title, site_url(issue.get_absolute_url())
    else:
        body_html = markdown_to_html(step.body)
        latest = issues_visible(newsletter=newsletter, now=now).first()
        subject, heading, issue_url = step.subject, "", ""
    return _letter(
        subscription,
        template="welcome",
        subject=subject,
        context={
            "body_html": html_for_email(body_html),
            "body_text": html_to_text(body_html, base_url=site_url()),
            "preheader": html_excerpt(body_html, length=PREHEADER_LENGTH),
            "heading": heading,
            "issue_url": issue_url,
            "latest": latest,
            "latest_url": site_url(latest.get_absolute_url()) if latest else "",
        },
    )


def reconfirm_message(*, subscription: Subscription, pause_at: datetime.datetime) -> ReaderEmail:
    """Build the "still want this?" mail: one link keeps the newsletter coming, silence pauses it at `pause_at`."""
    return _letter(
        subscription,
        template="reconfirm",
        subject="",
        context={"keep_url": keep_url(subscription.pk), "pause_at": pause_at},
    )
