"""The letters a newsletter writes readers besides digests: the confirmation request, the welcome
and every other onboarding step, the invitation of an import, the "still want this?" question.

Each is rendered here, with its newsletter's templates and branding (newsletters.emails,
newsletters.branding), into subject, text and HTML. newsletters.services sends the confirmation;
the others become ReaderEmails (reader_message: the list headers, From, Reply-To) that the digest
engine's letters send (newsletters.onboarding, newsletters.invitations build them). The layout
check (check_email_templates) and the gallery render them on sample content.
Each is in its reader's language (newsletters.languages.mail_language): the language given,
else the newsletter's, else LANGUAGE_CODE's.
"""

from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext

from newsletters.branding import brand_for
from newsletters.conf import site_url
from newsletters.emails import PREHEADER_LENGTH, email_html, email_text
from newsletters.languages import mail_language
from newsletters.markup import html_excerpt, html_for_email, markdown_to_html
from newsletters.messages import ReaderEmail, Verbatim, list_id_header
from newsletters.models import Issue, Newsletter, Subscription
from newsletters.plaintext import html_to_text
from newsletters.tokens import unsubscribe_url


@dataclass(frozen=True)
class Letter:
    subject: str
    text: str
    html: str


def letter_render(name: str, context: dict, *, newsletter: Newsletter | None) -> Letter:
    """Render emails/NAME_subject.txt, NAME.txt and NAME.html for a newsletter (None: the default templates)."""
    context = {**context, "brand": brand_for(newsletter)}
    return Letter(
        subject=" ".join(email_text(f"{name}_subject.txt", context, newsletter=newsletter).split()),
        text=email_text(f"{name}.txt", context, newsletter=newsletter),
        html=email_html(f"{name}.html", context, newsletter=newsletter),
    )


def confirm_render(
    *,
    name: str,
    newsletters: list[tuple[Newsletter, str]],
    confirm_url: str,
    max_age_days: int,
    language: str = "",
) -> Letter:
    """The confirmation request: in the one newsletter's templates, or the default ones for several.

    Its words are in `language`, else the (first) newsletter's language.
    """
    first = newsletters[0][0].language if newsletters else ""
    with translation.override(mail_language(reader=language, newsletter=first)):
        return _confirm_render(name=name, newsletters=newsletters, confirm_url=confirm_url, max_age_days=max_age_days)


def _confirm_render(
    *, name: str, newsletters: list[tuple[Newsletter, str]], confirm_url: str, max_age_days: int
) -> Letter:
    only = newsletters[0][0] if len(newsletters) == 1 else None
    context = {
        "name": name,
        "newsletter": only,
        "newsletters": newsletters,
        "confirm_url": confirm_url,
        "max_age_days": max_age_days,
        "site_url": site_url(),
        "preheader": gettext("One click confirms it; until then nothing is sent."),
        # The sender's identity at the foot, as in their digests; several newsletters may share one.
        "postal_addresses": list(
            dict.fromkeys(n.postal_address.strip() for n, _ in newsletters if n.postal_address.strip())
        ),
    }
    return letter_render("confirm", context, newsletter=only)


def welcome_render(
    *,
    newsletter: Newsletter,
    name: str,
    email: str,
    body: str,
    latest: Issue | None,
    preferences_url: str,
    subject: str = "",
    heading: str = "",
    issue_url: str = "",
    language: str = "",
) -> Letter:
    """The welcome, or any onboarding step: its Markdown `body` with the latest issue linked.

    An issue sent back as a step gives its `heading` and `issue_url` (and no `latest`). The
    subject is `subject`, else the template's ("Welcome to …"). Raises MarkupError for a bad text.
    Its own words are in `language` (the reader's), else the newsletter's language.
    """
    with translation.override(mail_language(reader=language, newsletter=newsletter.language)):
        return _welcome_render(
            newsletter=newsletter,
            name=name,
            email=email,
            body=body,
            latest=latest,
            preferences_url=preferences_url,
            subject=subject,
            heading=heading,
            issue_url=issue_url,
        )


def _welcome_render(
    *,
    newsletter: Newsletter,
    name: str,
    email: str,
    body: str,
    latest: Issue | None,
    preferences_url: str,
    subject: str,
    heading: str,
    issue_url: str,
) -> Letter:
    body_html = markdown_to_html(body)
    context = {
        "newsletter": newsletter,
        "name": name,
        "email": email,
        "body_html": html_for_email(body_html),
        "body_text": html_to_text(body_html, base_url=site_url()),
        "preheader": html_excerpt(body_html, length=PREHEADER_LENGTH),
        "heading": heading,
        "issue_url": issue_url,
        "latest": latest,
        "latest_url": site_url(latest.get_absolute_url()) if latest else "",
        "archive_url": site_url(newsletter.get_absolute_url()),
        "preferences_url": preferences_url,
    }
    letter = letter_render("welcome", context, newsletter=newsletter)
    return Letter(subject=subject, text=letter.text, html=letter.html) if subject else letter


def list_headers(subscription: Subscription) -> dict[str, Verbatim]:
    """A reader letter's list headers: the newsletter's List-Id and the reader's one-click unsubscribe.

    Raises ValueError for a List-Id that cannot be written (an editor's; digests are held for it too).
    """
    return {
        "List-Unsubscribe": Verbatim("List-Unsubscribe", f"<{unsubscribe_url(subscription.pk)}>"),
        "List-Unsubscribe-Post": Verbatim("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        "List-Id": Verbatim("List-Id", list_id_header(subscription.newsletter)),
    }


def reader_message(subscription: Subscription, letter: Letter) -> ReaderEmail:
    """A rendered letter as the message to one reader: the newsletter's From and Reply-To, the list headers.

    Raises ValueError as list_headers does. The caller sets the Message-ID and sends it.
    """
    newsletter = subscription.newsletter
    message = ReaderEmail(
        subject=letter.subject,
        body=letter.text,
        from_email=newsletter.from_email or None,
        to=[subscription.subscriber.email],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=list_headers(subscription),
    )
    message.attach_alternative(letter.html, "text/html")
    return message
