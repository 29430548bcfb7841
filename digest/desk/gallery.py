"""The template gallery: each template a newsletter may choose, drawn on its latest issue with its branding.

Each drawing is the digest a reader would get if the newsletter chose that template (its own
emails/<slug>/ files still come first), with inert personal links, and the layout check's
findings for it (digest.rendering.layout).
"""

import copy
import datetime
from dataclasses import dataclass, field

from django.db.models import F, Prefetch

from digest.exceptions import RenderError
from digest.rendering.content import UNSUBSCRIBE_URL, digest_render
from digest.rendering.layout import Finding, letter_findings
from newsletters.emails import theme_choices
from newsletters.letters import Letter
from newsletters.models import Attachment, Issue, Newsletter


@dataclass
class Drawing:
    """One template in the gallery: its name, whether the newsletter uses it, and what it drew."""

    name: str
    label: str
    chosen: bool
    subject: str = ""
    text: str = ""
    html: str = ""
    error: str = ""
    findings: list[Finding] = field(default_factory=list)


def gallery_issue(newsletter: Newsletter) -> Issue | None:
    """The newsletter's latest issue: the last published, else the last written."""
    issues = Issue.objects.filter(newsletter=newsletter).prefetch_related(
        Prefetch("attachments", queryset=Attachment.objects.order_by("id"))
    )
    return issues.order_by(F("publish_at").desc(nulls_last=True), "-created_at").first()


def gallery_draw(*, newsletter: Newsletter, issue: Issue, personalize, now: datetime.datetime) -> list[Drawing]:
    """Draw the issue in every template on disk, with the newsletter's branding; `personalize` makes links inert."""
    start = (issue.publish_at or now) - datetime.timedelta(days=1)
    drawings = []
    for name, label in theme_choices():
        drawing = Drawing(name=name, label=label, chosen=name == newsletter.template)
        trying = copy.copy(newsletter)
        trying.template = name
        try:
            rendered = digest_render(
                newsletter=trying, issues=[issue], window_start=start, window_end=start + datetime.timedelta(days=1)
            )
        except RenderError as error:
            drawing.error = str(error)
            drawings.append(drawing)
            continue
        drawing.findings = letter_findings(
            Letter(subject=rendered.subject, text=rendered.text, html=rendered.html),
            template=label,
            mail="digest",
            address=newsletter.postal_address.strip(),
            links={"unsubscribe link": UNSUBSCRIBE_URL},
        )
        drawing.subject = rendered.subject
        drawing.text, drawing.html = personalize(rendered)
        drawings.append(drawing)
    return drawings
