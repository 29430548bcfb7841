"""Editor previews: what a digest will look like, and test sends, without touching the ledger."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_unicode_slug
from django.db.models import Prefetch
from django.template.defaultfilters import filesizeformat
from lxml import html as lxml_html

from digest.conf import digest_settings
from digest.exceptions import RenderError
from digest.rendering.clip import CLIP_BYTES
from digest.rendering.content import Personal, RenderedDigest, digest_render
from newsletters.conf import newsletters_settings
from newsletters.markup import markdown_to_html, markdown_unsanitized, url_allowed
from newsletters.messages import ReaderEmail
from newsletters.models import Attachment, Frequency, Issue, IssueStatus, Newsletter
from newsletters.schedules import Schedule
from newsletters.selectors import issues_published_between

SAMPLE_UNSUBSCRIBE = "#unsubscribe-link-is-personal"
SAMPLE_PREFERENCES = "#preferences-link-is-personal"
SAMPLE_EMAIL = "reader@example.com"


def _with_files(issues):
    return issues.prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))


def preview_issue(*, issue: Issue, now: datetime.datetime) -> RenderedDigest:
    """Render the digest a reader gets when this issue is the only new one (a draft: as if published now)."""
    start = (issue.publish_at or now) - datetime.timedelta(days=1)
    end = start + datetime.timedelta(days=1)
    issues = list(_with_files(Issue.objects.filter(pk=issue.pk)))
    return digest_render(newsletter=issue.newsletter, issues=issues, window_start=start, window_end=end)


def preview_next(
    *, newsletter: Newsletter, frequency: str, now: datetime.datetime
) -> tuple[RenderedDigest | None, datetime.datetime]:
    """Render the next scheduled digest of a frequency in the site's time zone, scheduled issues included."""
    schedule = Schedule(
        frequency, newsletter.send_time, newsletter.weekly_day, settings.TIME_ZONE, newsletter.monthly_day
    )
    start, end = schedule.last_at(now), schedule.next_after(now)
    issues = list(_with_files(issues_published_between(newsletter_id=newsletter.pk, start=start, end=end)))
    if not issues:
        return None, end
    return digest_render(newsletter=newsletter, issues=issues, window_start=start, window_end=end), end


def preview_personalize(rendered: RenderedDigest, *, name: str) -> tuple[str, str]:
    """Return (text, html) as a reader named `name` would see them, with inert personal links."""
    return rendered.personalize(
        Personal(
            name=name,
            email=SAMPLE_EMAIL,
            unsubscribe_url=SAMPLE_UNSUBSCRIBE,
            preferences_url=SAMPLE_PREFERENCES,
            language=rendered.language,
        )
    )


def preview_send_test(*, rendered: RenderedDigest, to: str, name: str) -> int:
    """Send the rendered digest to one editor, marked as a test, through the digest mailer (DKIM-signed if configured)."""
    text, html = preview_personalize(rendered, name=name)
    message = ReaderEmail(
        subject=f"[TEST] {rendered.subject}",
        body=text,
        from_email=rendered.newsletter.sender,
        to=[to],
    )
    message.attach_alternative(html, "text/html")
    for file in rendered.attachments:
        message.attach(file.filename, file.path.read_bytes(), file.mimetype)
    return message.send(using=digest_settings.MAILER)


def preview_clip_warnings(rendered: RenderedDigest) -> list[str]:
    """Warn an editor whose issue alone makes a digest too long for Gmail, with its size (digest.rendering.clip)."""
    if not rendered.uncut_bytes:
        return []
    return [
        f"This issue makes an email with {rendered.uncut_bytes / 1000:.0f} KB of HTML. Gmail shows only the "
        f"first {CLIP_BYTES // 1000} KB or so and hides the rest, the unsubscribe link with it, so readers get "
        "its opening and a “Read the rest online” link. A shorter issue, or two, reads whole in the mail."
    ]


def issue_published_warnings(sender, *, issue: Issue, now: datetime.datetime, **kwargs) -> list[str]:
    """What publish_issue tells the editor about the digest this issue makes (a newsletters.signals receiver):
    the live preview's warnings about the Markdown and the files, and whether Gmail would clip it."""
    sizes = [(attachment.filename, attachment.file.size) for attachment in issue.attachments.all()]
    warnings = preview_warnings(body=issue.body, attachment_sizes=sizes)
    try:
        return warnings + preview_clip_warnings(preview_issue(issue=issue, now=now))
    except (RenderError, OSError) as error:
        return [*warnings, f"The digest of this issue cannot be rendered: {error}"]


FREQUENCIES = [frequency for frequency in Frequency if frequency != Frequency.IMMEDIATE]


# ------------------------------------------------------------------ live preview


def preview_id(value: str | None) -> int | None:
    """Return a row id posted by the editor's page ("" or absent: None); raise ValueError for anything else."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise ValueError(f"{value[:40]!r} is not an id")
    return int(value)


def preview_draft(
    *, newsletter: Newsletter, title: str, slug: str, body: str, issue_pk: int | None, now: datetime.datetime
) -> RenderedDigest:
    """Render the digest an issue being written would make, without saving anything.

    The text comes from the editor's form; an issue already saved keeps its attached files.
    A slug not yet valid (a space, a "/") is shown as "preview": the form says what is wrong.
    Raises MarkupError for a body that cannot be rendered at bounded cost.
    """
    try:
        validate_unicode_slug(slug)
    except ValidationError:
        slug = ""
    publish_at = now
    # pk 0 is never a row: a new issue has no files yet, and its (empty) attachment query stays valid.
    issue = Issue(
        pk=issue_pk or 0,
        newsletter=newsletter,
        title=title,
        slug=slug or "preview",
        body=body,
        status=IssueStatus.PUBLISHED,
        publish_at=publish_at,
    )
    day = datetime.timedelta(days=1)
    return digest_render(newsletter=newsletter, issues=[issue], window_start=publish_at - day, window_end=publish_at)


# A phone shows about 340 CSS px of text between the margins; a table cell's character is
# about 7.5 px wide at the digest's 15 px font, plus 16 px of padding per cell.
PHONE_WIDTH_PX = 340
_CHAR_PX = 7.5
_CELL_PADDING_PX = 16


def _table_width(table) -> int:
    widths: dict[int, int] = {}
    for row in table.iter("tr"):
        for column, cell in enumerate(row.iter("th", "td")):
            longest = max((len(word) for word in cell.text_content().split()), default=0)
            text = len(cell.text_content().strip())
            # A cell wraps at spaces, but never narrower than its longest word; long text wraps to ~20 characters.
            widths[column] = max(widths.get(column, 0), max(longest, min(text, 20)))
    return int(sum(width * _CHAR_PX + _CELL_PADDING_PX for width in widths.values()))


def preview_warnings(*, body: str, attachment_sizes: list[tuple[str, int]]) -> list[str]:
    """What an editor should fix before sending: links the sanitizer drops, images without alt text,
    tables wider than a phone, attachments over the size budget."""
    warnings = []
    raw = markdown_unsanitized(body or "")
    if raw.strip():
        tree = lxml_html.fragment_fromstring(raw, create_parent="div")
        for link in tree.iter("a"):
            href = (link.get("href") or "").strip()
            if href and not url_allowed(href):
                text = link.text_content().strip() or href
                warnings.append(
                    f"The link “{text[:60]}” goes to “{href[:80]}”, which is not an http(s) address: "
                    "it is removed from the email."
                )
    safe = markdown_to_html(body or "")
    if safe.strip():
        tree = lxml_html.fragment_fromstring(safe, create_parent="div")
        for image in tree.iter("img"):
            if not (image.get("alt") or "").strip():
                warnings.append(
                    f"The image {image.get('src', '')[:80]} has no alt text: readers whose mail client "
                    "blocks images, and screen readers, get nothing. Write ![what it shows](…)."
                )
        for number, table in enumerate(tree.iter("table"), start=1):
            width = _table_width(table)
            if width > PHONE_WIDTH_PX:
                warnings.append(
                    f"Table {number} is about {width} px wide; a phone shows about {PHONE_WIDTH_PX} px, "
                    "so readers will scroll sideways. Fewer or narrower columns read better."
                )
    limit = newsletters_settings.MAX_ATTACHMENT_BYTES
    for name, size in attachment_sizes:
        if size > limit:
            warnings.append(
                f"The file {name} is {filesizeformat(size)}, over the {filesizeformat(limit)} "
                "limit for one attachment (NEWSLETTERS_MAX_ATTACHMENT_BYTES): it will be refused."
            )
    total = sum(size for _, size in attachment_sizes)
    budget = digest_settings.ATTACHMENT_MAX_BYTES
    if total > budget:
        warnings.append(
            f"The files add up to {filesizeformat(total)}, over the {filesizeformat(budget)} a digest "
            "attaches (DIGEST_ATTACHMENT_MAX_BYTES): readers get links to them instead."
        )
    return warnings
