"""The two letters a newsletter writes readers besides digests: the confirmation request and the welcome.

Each is rendered here, with its newsletter's templates and branding (newsletters.emails,
newsletters.branding), into subject, text and HTML; newsletters.services sends them, and the
layout check (check_email_templates) and the gallery render them on sample content.
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
from newsletters.models import Issue, Newsletter
from newsletters.plaintext import html_to_text


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
    latest: Issue | None,
    preferences_url: str,
    language: str = "",
) -> Letter:
    """The welcome: the newsletter's welcome text, its latest issue linked. Raises MarkupError for a bad text.

    Its own words are in `language` (the reader's), else the newsletter's language.
    """
    with translation.override(mail_language(reader=language, newsletter=newsletter.language)):
        return _welcome_render(
            newsletter=newsletter, name=name, email=email, latest=latest, preferences_url=preferences_url
        )


def _welcome_render(
    *, newsletter: Newsletter, name: str, email: str, latest: Issue | None, preferences_url: str
) -> Letter:
    body_html = markdown_to_html(newsletter.welcome_text)
    context = {
        "newsletter": newsletter,
        "name": name,
        "email": email,
        "body_html": html_for_email(body_html),
        "body_text": html_to_text(body_html, base_url=site_url()),
        "preheader": html_excerpt(body_html, length=PREHEADER_LENGTH),
        "latest": latest,
        "latest_url": site_url(latest.get_absolute_url()) if latest else "",
        "archive_url": site_url(newsletter.get_absolute_url()),
        "preferences_url": preferences_url,
    }
    return letter_render("welcome", context, newsletter=newsletter)
