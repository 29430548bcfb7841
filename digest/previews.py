"""Editor previews: what a digest will look like, and test sends, without touching the ledger."""

import datetime

from django.conf import settings
from django.db.models import Prefetch

from digest.conf import digest_settings
from digest.dkim import DkimEmail
from digest.rendering import Personal, RenderedDigest, digest_render
from newsletters.models import Attachment, Frequency, Issue, Newsletter
from newsletters.schedules import occurrence_last, occurrence_next
from newsletters.selectors import issues_published_between

SAMPLE_UNSUBSCRIBE = "#unsubscribe-link-is-personal"
SAMPLE_PREFERENCES = "#preferences-link-is-personal"


def _with_files(issues):
    return issues.prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))


def preview_issue(*, issue: Issue) -> RenderedDigest:
    """Render the digest a reader gets when this issue is the only new one."""
    start = (issue.publish_at or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=1)
    end = start + datetime.timedelta(days=1)
    issues = list(_with_files(Issue.objects.filter(pk=issue.pk)))
    return digest_render(newsletter=issue.newsletter, issues=issues, window_start=start, window_end=end)


def preview_next(
    *, newsletter: Newsletter, frequency: str, now: datetime.datetime
) -> tuple[RenderedDigest | None, datetime.datetime]:
    """Render the next daily or weekly digest in the site's time zone, scheduled issues included."""
    kwargs = {
        "frequency": frequency,
        "send_time": newsletter.send_time,
        "weekday": newsletter.weekly_day,
        "tz_name": settings.TIME_ZONE,
    }
    start = occurrence_last(at=now, **kwargs)
    end = occurrence_next(after=now, **kwargs)
    issues = list(_with_files(issues_published_between(newsletter_id=newsletter.pk, start=start, end=end)))
    if not issues:
        return None, end
    return digest_render(newsletter=newsletter, issues=issues, window_start=start, window_end=end), end


def preview_personalize(rendered: RenderedDigest, *, name: str) -> tuple[str, str]:
    """Return (text, html) as a reader named `name` would see them, with inert personal links."""
    return rendered.personalize(
        Personal(name=name, email="", unsubscribe_url=SAMPLE_UNSUBSCRIBE, preferences_url=SAMPLE_PREFERENCES)
    )


def preview_send_test(*, rendered: RenderedDigest, to: str, name: str) -> int:
    """Send the rendered digest to one editor, marked as a test, through the digest mailer (DKIM-signed if configured)."""
    text, html = preview_personalize(rendered, name=name)
    message = DkimEmail(
        subject=f"[TEST] {rendered.subject}",
        body=text,
        from_email=rendered.newsletter.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(html, "text/html")
    for file in rendered.attachments:
        message.attach(file.filename, file.path.read_bytes(), file.mimetype)
    return message.send(using=digest_settings.MAILER)


FREQUENCIES = [Frequency.DAILY, Frequency.WEEKLY]
