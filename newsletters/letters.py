"""The letters a reader gets from the reader flows: the confirmation link and the welcome mail.

Each is built in the reader's language (newsletters.languages) by the caller's
translation.override, and sent through the default mailer.
"""

import datetime
import logging
import smtplib

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from newsletters.conf import newsletters_settings, site_url
from newsletters.emails import PREHEADER_LENGTH, email_html
from newsletters.exceptions import MarkupError
from newsletters.languages import mail_language
from newsletters.markup import html_excerpt, html_for_email, markdown_to_html
from newsletters.messages import ReaderEmail, Verbatim, list_id_header
from newsletters.models import Frequency, Newsletter, Subscriber
from newsletters.plaintext import html_to_text
from newsletters.selectors import issues_visible
from newsletters.tokens import confirm_url, preferences_url, unsubscribe_url

logger = logging.getLogger(__name__)


def confirmation_send(*, email: str, name: str, payload: dict, choices: dict[int, str], newsletters: list) -> bool:
    """Mail the link that confirms a subscription request (the payload it signs); return whether it went out."""
    context = {
        "name": name,
        "newsletters": [(n, Frequency(choices[n.pk]).label) for n in newsletters],
        "confirm_url": confirm_url(payload),
        "max_age_days": newsletters_settings.CONFIRM_MAX_AGE_DAYS,
        "site_url": site_url(),
        "preheader": gettext("One click confirms it; until then nothing is sent."),
        # The sender's identity at the foot, as in their digests; several newsletters may share one.
        "postal_addresses": list(
            dict.fromkeys(n.postal_address.strip() for n in newsletters if n.postal_address.strip())
        ),
    }
    subject = " ".join(render_to_string("emails/confirm_subject.txt", context).split())
    message = ReaderEmail(
        subject=subject,
        body=render_to_string("emails/confirm.txt", context),
        to=[email],
        # RFC 3834: a machine's answer to a request; auto-responders do not answer it.
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(email_html("emails/confirm.html", context), "text/html")
    return message.send() == 1


def welcome_send(*, subscriber: Subscriber, newsletter: Newsletter, now: datetime.datetime) -> bool:
    """Mail a reader who just joined the newsletter's welcome text, with its latest issue linked.

    Sends nothing when the newsletter has no welcome text. Goes through the default mailer;
    a mail server that refuses it, or a text that cannot be rendered, is logged, and the
    subscription stands. The mail's own words are in the reader's language.
    """
    if not newsletter.welcome_text.strip():
        return False
    with translation.override(mail_language(reader=subscriber.language, newsletter=newsletter.language)):
        return _welcome_send(subscriber=subscriber, newsletter=newsletter, now=now)


def _welcome_send(*, subscriber: Subscriber, newsletter: Newsletter, now: datetime.datetime) -> bool:
    try:
        body_html = markdown_to_html(newsletter.welcome_text)
    except MarkupError as error:
        logger.error("Cannot render the welcome text of %s: %s", newsletter.slug, error)
        return False
    latest = issues_visible(newsletter=newsletter, now=now).first()
    context = {
        "newsletter": newsletter,
        "name": subscriber.name,
        "email": subscriber.email,
        "body_html": html_for_email(body_html),
        "body_text": html_to_text(body_html, base_url=site_url()),
        "preheader": html_excerpt(body_html, length=PREHEADER_LENGTH),
        "latest": latest,
        "latest_url": site_url(latest.get_absolute_url()) if latest else "",
        "archive_url": site_url(newsletter.get_absolute_url()),
        "preferences_url": preferences_url(subscriber.pk),
    }
    message = ReaderEmail(
        subject=" ".join(render_to_string("emails/welcome_subject.txt", context).split()),
        body=render_to_string("emails/welcome.txt", context),
        from_email=newsletter.from_email or None,
        to=[subscriber.email],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=_welcome_headers(subscriber, newsletter),
    )
    message.attach_alternative(email_html("emails/welcome.html", context), "text/html")
    try:
        return message.send() == 1
    except (smtplib.SMTPException, OSError) as error:
        logger.error("Cannot send the welcome mail of %s to subscriber %s: %s", newsletter.slug, subscriber.pk, error)
        return False


def _welcome_headers(subscriber: Subscriber, newsletter: Newsletter) -> dict[str, Verbatim]:
    """The welcome mail's list headers: the newsletter's List-Id and the reader's one-click unsubscribe."""
    headers = {}
    subscription = subscriber.subscriptions.filter(newsletter=newsletter).first()
    if subscription is not None:
        headers["List-Unsubscribe"] = Verbatim("List-Unsubscribe", f"<{unsubscribe_url(subscription.pk)}>")
        headers["List-Unsubscribe-Post"] = Verbatim("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    try:
        headers["List-Id"] = Verbatim("List-Id", list_id_header(newsletter))
    except ValueError as error:  # an editor's List-Id the digests refuse too (digest.sending.delivery holds them)
        logger.warning("The welcome mail of %s goes without a List-Id: %s", newsletter.slug, error)
    return headers
