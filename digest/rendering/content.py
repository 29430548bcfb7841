"""How a digest looks: rendered once per group, personalised per recipient by substitution.

Per group, once (digest.rendering.groups shares it across runs and processes): issues' Markdown → safe HTML (newsletters.markup) → Django templates
(digest_subject.txt, digest.txt, digest.html, looked up per newsletter by newsletters.emails,
with its branding) → premailer inlines the CSS
(newsletters.emails, the layout every reader mail shares), later issues shortened if the
HTML would pass Gmail's clip (digest.rendering.clip). The
templates carry placeholder markers where personal values go; `personalize()` swaps
them in per recipient, which is string replacement, never a render.
"""

import datetime
import functools
import html
import logging
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext

from digest.conf import digest_settings
from digest.exceptions import RenderError
from digest.rendering.clip import clip_fit
from digest.rendering.links import links_counted
from newsletters.branding import brand_for
from newsletters.conf import site_url
from newsletters.emails import PREHEADER_LENGTH, email_html, email_text
from newsletters.exceptions import MarkupError
from newsletters.languages import mail_language
from newsletters.markup import html_excerpt, html_for_email, markdown_to_html
from newsletters.models import Issue, Newsletter
from newsletters.plaintext import html_to_text
from newsletters.validators import validate_single_line

logger = logging.getLogger(__name__)


# Markers survive HTML escaping and premailer untouched: the URLs are absolute, so
# premailer's base_url joining leaves them alone (.invalid never resolves, RFC 2606).
GREETING = "XDIGESTX_GREETING_X"
EMAIL = "XDIGESTX_EMAIL_X"
UNSUBSCRIBE_URL = "https://xdigestx.invalid/unsubscribe"
PREFERENCES_URL = "https://xdigestx.invalid/preferences"


@dataclass(frozen=True)
class Personal:
    """One recipient's values: everything that differs between two copies of a group's digest."""

    name: str
    email: str
    unsubscribe_url: str
    preferences_url: str
    list_unsubscribe: str = ""
    # The language of the reader's group (digest.models.Window): their greeting's.
    language: str = ""


@functools.cache
def _greetings(language: str) -> tuple[str, str]:
    with translation.override(language or None):
        return gettext("Hi %(name)s,"), gettext("Hello,")


def greeting_for(name: str, language: str = "") -> str:
    """The first line of a digest, in the reader's language."""
    named, plain = _greetings(language)
    return named % {"name": name} if name else plain


# The one table of personal values in a digest's bodies: marker → its value for a reader.
# A new placeholder is a row here and a context entry in digest_render; both senders
# (personalize() and digest.rendering.prebuilt) read this table.
PERSONAL_FIELDS: dict[str, Callable[[Personal], str]] = {
    GREETING: lambda personal: greeting_for(personal.name, personal.language),
    EMAIL: lambda personal: personal.email,
    UNSUBSCRIBE_URL: lambda personal: personal.unsubscribe_url,
    PREFERENCES_URL: lambda personal: personal.preferences_url,
}
_MARKERS = re.compile("|".join(re.escape(marker) for marker in PERSONAL_FIELDS))


def personal_values(personal: Personal) -> dict[str, str]:
    """Map each marker to this reader's value."""
    return {marker: value(personal) for marker, value in PERSONAL_FIELDS.items()}


@dataclass(frozen=True)
class FileToSend:
    path: Path
    filename: str
    mimetype: str


@dataclass
class RenderedDigest:
    """One group's digest, ready for per-recipient substitution."""

    newsletter: Newsletter
    subject: str
    text: str
    html: str
    issue_ids: list[int]
    # The language its own words are in (newsletters.languages.mail_language).
    language: str = ""
    attachments: list[FileToSend] = field(default_factory=list)
    # True when another run rendered it (digest.models.Rendering) and this one reused it.
    reused: bool = False
    # The HTML's size before later issues were shortened to fit Gmail's clip (digest.rendering.clip); 0: nothing was.
    uncut_bytes: int = 0

    def personalize(self, personal: Personal) -> tuple[str, str]:
        """Return (text, html) for one recipient."""
        values = personal_values(personal)
        text = _MARKERS.sub(lambda match: values[match.group()], self.text)
        body = _MARKERS.sub(lambda match: html.escape(values[match.group()]), self.html)
        return text, body


def preheader_for(entries: list[dict]) -> str:
    """The inbox preview line: the editor's preheader of each issue, else its first words.

    With several issues, an issue without its own preheader is named by its title.
    """
    parts = [
        entry["issue"].preheader
        or (html_excerpt(entry["html"], length=PREHEADER_LENGTH) if len(entries) == 1 else entry["issue"].title)
        for entry in entries
    ]
    line = " · ".join(part for part in parts if part)
    return line if len(line) <= PREHEADER_LENGTH else line[: PREHEADER_LENGTH - 1].rstrip() + "…"


def digest_render(
    *,
    newsletter: Newsletter,
    issues: list[Issue],
    window_start: datetime.datetime,
    window_end: datetime.datetime,
    language: str = "",
) -> RenderedDigest:
    """Render one group's digest: subject, text and CSS-inlined HTML, with personal markers.

    Its own words and dates are in `language` (default: the newsletter's, else LANGUAGE_CODE's).
    """
    if not issues:
        raise RenderError("A digest needs at least one issue.", newsletter=newsletter.pk)
    language = language or mail_language(reader="", newsletter=newsletter.language)
    with translation.override(language):
        rendered = _digest_render(newsletter, issues, window_start=window_start, window_end=window_end)
    rendered.language = language
    return rendered


def _digest_render(newsletter, issues, *, window_start, window_end) -> RenderedDigest:
    entries = []
    for issue in issues:
        try:
            body_html = markdown_to_html(issue.body)
        except MarkupError as error:  # saved before its text was checked: the group is held
            raise RenderError(f"the issue {issue.title!r} cannot be rendered: {error}", issue=issue.pk) from None
        if newsletter.count_links:
            body_html = links_counted(body_html, issue_id=issue.pk)
        entries.append(
            {
                "issue": issue,
                "html": html_for_email(body_html),
                "text": html_to_text(body_html, base_url=site_url()),
                "url": site_url(issue.get_absolute_url()),
            }
        )
    files, linked = _attachments(issues)
    try:
        brand = brand_for(newsletter)
    except MarkupError as error:  # saved before its text was checked: the group is held
        raise RenderError(
            f"the newsletter's header or footer cannot be rendered: {error}", newsletter=newsletter.pk
        ) from None
    context = {
        "newsletter": newsletter,
        "entries": entries,
        "count": len(entries),
        "preheader": preheader_for(entries),
        "window_start": window_start,
        "window_end": window_end,
        "site_url": site_url(),
        "archive_url": site_url(newsletter.get_absolute_url()),
        "greeting": GREETING,
        "reader_email": EMAIL,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "linked_files": linked,
        "attached_files": files,
        "brand": brand,
    }
    subject = email_text("digest_subject.txt", context, newsletter=newsletter).strip()
    try:
        validate_single_line(subject)
    except ValidationError:
        raise RenderError(f"The subject {subject!r} contains a line break.", newsletter=newsletter.pk) from None
    document, uncut_bytes = clip_fit(lambda: email_html("digest.html", context, newsletter=newsletter), entries)
    for entry in entries:  # the text says what the HTML says (rspamd scores parts that differ: R_PARTS_DIFFER)
        if entry.get("cut"):
            entry["text"] = html_to_text(entry["html"], base_url=site_url())
    text = email_text("digest.txt", context, newsletter=newsletter)
    return RenderedDigest(
        newsletter=newsletter,
        subject=subject,
        text=text,
        html=document,
        issue_ids=[issue.pk for issue in issues],
        attachments=files,
        uncut_bytes=uncut_bytes,
    )


def _attachments(issues: list[Issue]) -> tuple[list[FileToSend], list[dict]]:
    """Attach the issues' files, or link all of them when together they exceed the size cap."""
    items = [attachment for issue in issues for attachment in issue.attachments.all()]
    total = sum(attachment.file.size for attachment in items)
    if total <= digest_settings.ATTACHMENT_MAX_BYTES:
        files = [
            FileToSend(
                path=Path(attachment.file.path),
                filename=attachment.filename,
                mimetype=mimetypes.guess_type(attachment.filename)[0] or "application/octet-stream",
            )
            for attachment in items
        ]
        return files, []
    linked = [
        {"name": attachment.filename, "url": site_url(attachment.file.url), "size": attachment.file.size}
        for attachment in items
    ]
    return [], linked
