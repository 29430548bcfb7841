"""One rendering per group, shared by every run and process that sends it (the Rendering row is the lock).

A group is the subscriptions whose digests hold the same window of a newsletter, in the same
language (the words around the issues are translated: newsletters.languages); a stored
rendering is reused while its issues, files, newsletter and site are unchanged and it is
younger than REUSE_SECONDS."""

import datetime
import hashlib
import logging
from pathlib import Path

from django.db import DatabaseError, transaction
from django.db.models import Prefetch

from digest.conf import digest_settings
from digest.exceptions import RenderError
from digest.models import Rendering, Window
from digest.rendering.content import FileToSend, RenderedDigest, digest_render
from newsletters.conf import site_url
from newsletters.languages import mail_language
from newsletters.models import Attachment, Issue
from newsletters.selectors import issues_published_between

logger = logging.getLogger(__name__)


# Another run or process reuses a group's stored rendering this long after it was made.
REUSE_SECONDS = 600


def group_render(window: Window, *, now: datetime.datetime) -> RenderedDigest | None:
    """Return one group's digest, rendered once for every run and process that sends it.

    None if its issues were unpublished meanwhile. The Rendering row is the lock: the
    first run inserts and renders it inside one transaction; a concurrent run's INSERT
    (PostgreSQL) or BEGIN IMMEDIATE (SQLite) waits for that commit, then reuses it.
    Raises RenderError for anything that keeps this group from rendering.
    """
    issues = list(
        issues_published_between(newsletter_id=window.newsletter_id, start=window.start, end=window.end)
        .select_related("newsletter")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id")))
    )
    if not issues:
        return None
    newsletter = issues[0].newsletter
    signature = _signature(newsletter, issues)
    language = window.language or mail_language(reader="", newsletter=newsletter.language)
    key = {"newsletter": newsletter, "window_start": window.start, "window_end": window.end, "language": language}
    try:
        return _render_stored(newsletter, issues, window, key=key, signature=signature, now=now)
    except RenderError as error:
        logger.error("Cannot render the digest of %s for %s: %s", newsletter.slug, window, error)
        raise
    except DatabaseError:
        raise  # the database is gone for every group, not just this one
    except Exception as error:
        # One group's digest must never stop the run for every other group: whatever its
        # content made the template, Markdown or premailer raise, the group is held and
        # ADMINS are told, with the traceback in the log.
        logger.exception("Cannot render the digest of %s for %s", newsletter.slug, window)
        raise RenderError(f"cannot render: {type(error).__name__}: {error}", newsletter=newsletter.slug) from error


def _render_stored(newsletter, issues, window: Window, *, key: dict, signature: str, now: datetime.datetime):
    """Render a group inside the Rendering row's lock, or reuse what another run stored."""
    with transaction.atomic():
        Rendering.objects.bulk_create([Rendering(**key, rendered_at=now)], ignore_conflicts=True)
        stored = Rendering.objects.select_for_update().get(**key)
        fresh = now - datetime.timedelta(seconds=REUSE_SECONDS) <= stored.rendered_at <= now
        if stored.signature == signature and fresh:
            return _from_stored(stored, newsletter, language=key["language"])
        rendered = digest_render(
            newsletter=newsletter,
            issues=issues,
            window_start=window.start,
            window_end=window.end,
            language=key["language"],
        )
        stored.signature, stored.rendered_at = signature, now
        stored.subject, stored.text, stored.html = rendered.subject, rendered.text, rendered.html
        stored.issue_ids = rendered.issue_ids
        stored.attachments = [[str(f.path), f.filename, f.mimetype] for f in rendered.attachments]
        stored.save()
        return rendered


def _signature(newsletter, issues: list[Issue]) -> str:
    """What a rendering depends on: the newsletter, each issue and its files, the site URL."""
    parts = [site_url(), digest_settings.ATTACHMENT_MAX_BYTES]
    parts += [(field.attname, getattr(newsletter, field.attname)) for field in newsletter._meta.concrete_fields]
    for issue in issues:
        parts.append(
            (issue.pk, issue.updated_at, [(a.pk, a.file.name, a.display_name) for a in issue.attachments.all()])
        )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _from_stored(stored: Rendering, newsletter, *, language: str) -> RenderedDigest:
    return RenderedDigest(
        newsletter=newsletter,
        language=language,
        subject=stored.subject,
        text=stored.text,
        html=stored.html,
        issue_ids=list(stored.issue_ids),
        attachments=[FileToSend(Path(path), filename, mimetype) for path, filename, mimetype in stored.attachments],
        reused=True,
    )
