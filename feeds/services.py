"""Turning what is new in a newsletter's feeds into issues: one issue per feed per run, drafted or published.

An item is new when its GUID (the entry's id, else its link) was never seen in that feed.
The first fetch of a feed only notes what it holds, so following a blog does not mail its
whole archive. A feed that cannot be read, or whose items do not make a valid issue,
changes nothing but its row: the error and its time, shown in the feeds' admin list.
"""

import datetime
import logging
import re
from collections import Counter
from urllib.parse import quote

from django.db import transaction
from django.utils.text import slugify

from feeds.conf import feeds_settings
from feeds.exceptions import FeedError
from feeds.fetching import Entry, feed_download, feed_parse
from feeds.models import Feed, FeedItem, FeedMode
from newsletters.exceptions import MarkupError
from newsletters.markup import html_excerpt, markdown_to_html, sanitize_html, url_allowed
from newsletters.models import Issue, IssueStatus
from newsletters.services import issue_publish

logger = logging.getLogger(__name__)

SUMMARY_LENGTH = 600
# Characters Markdown would read as syntax in a line of feed text; "<" as an entity, so no
# tag survives to the sanitizer's judgement.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def feeds_fetch_all(*, now: datetime.datetime) -> Counter:
    """Fetch every active feed once; count the outcomes ("issues", "unchanged", "noted", "failed")."""
    counts = Counter()
    for feed in Feed.objects.filter(active=True, newsletter__active=True).select_related("newsletter"):
        counts[feed_fetch(feed=feed, now=now)] += 1
    return counts


def feed_fetch(*, feed: Feed, now: datetime.datetime) -> str:
    """Read one feed and gather its new items into an issue; record a failure on the feed instead of raising."""
    try:
        parsed = feed_parse(feed_download(feed.url, timeout=feeds_settings.TIMEOUT, max_bytes=feeds_settings.MAX_BYTES))
        with transaction.atomic():
            # One fetch of a feed at a time (cron on several machines): the second sees the first's items.
            Feed.objects.select_for_update().filter(pk=feed.pk).first()
            outcome = _gather(feed=feed, entries=parsed.entries, now=now)
            feed.title = parsed.title or feed.title
            feed.last_fetched_at, feed.last_error, feed.last_error_at = now, "", None
            feed.save(update_fields=["title", "last_fetched_at", "last_error", "last_error_at"])
    except FeedError as error:
        logger.warning("Feed %s (%s): %s", feed.pk, feed.url, error)
        Feed.objects.filter(pk=feed.pk).update(last_error=str(error), last_error_at=now)
        feed.last_error, feed.last_error_at = str(error), now
        return "failed"
    return outcome


def _gather(*, feed: Feed, entries: list[Entry], now: datetime.datetime) -> str:
    seen = set(FeedItem.objects.filter(feed=feed, guid__in=[e.guid for e in entries]).values_list("guid", flat=True))
    new = list({entry.guid: entry for entry in entries if entry.guid not in seen}.values())
    if not new:
        return "unchanged"
    first_fetch = feed.last_fetched_at is None and not FeedItem.objects.filter(feed=feed).exists()
    gathered = [] if first_fetch else new[: feeds_settings.MAX_ITEMS]
    issue = _issue_create(feed=feed, entries=gathered, now=now) if gathered else None
    FeedItem.objects.bulk_create(
        FeedItem(feed=feed, guid=entry.guid, issue=issue if entry in gathered else None, seen_at=now) for entry in new
    )
    return "noted" if issue is None else "issues"


def _issue_create(*, feed: Feed, entries: list[Entry], now: datetime.datetime) -> Issue:
    body = "\n\n".join(_entry_markdown(entry) for entry in entries) + "\n"
    try:
        markdown_to_html(body)
    except MarkupError as error:
        raise FeedError(f"The new items do not make a valid issue: {error}") from None
    if len(entries) == 1:
        title = _text(entries[0].title, length=250) or "New post"
    else:
        title = f"{feed.title or feed.newsletter.name}"[:230] + f": {len(entries)} new posts"
    issue = Issue.objects.create(
        newsletter=feed.newsletter,
        title=title,
        slug=_slug_free(feed, slugify(title, allow_unicode=True)[:200] or "feed"),
        body=body,
        status=IssueStatus.DRAFT,
    )
    if feed.mode == FeedMode.PUBLISH:
        issue_publish(issue=issue, now=now)
    return issue


def _text(html: str, *, length: int) -> str:
    """Feed HTML (a title may hold some too) as one line of text, through the Markdown sanitizer."""
    return html_excerpt(sanitize_html(html), length=length) if html.strip() else ""


def _entry_markdown(entry: Entry) -> str:
    title = _escape(_text(entry.title, length=250) or "Untitled")
    link = quote(entry.link, safe=":/?#[]@!$&'*+,;=%~") if entry.link else ""
    heading = f"## [{title}]({link})" if link and url_allowed(link) and link.startswith("http") else f"## {title}"
    summary = _text(entry.summary, length=SUMMARY_LENGTH)
    return f"{heading}\n\n{_escape(summary)}" if summary else heading


def _escape(text: str) -> str:
    """Feed text as literal Markdown: syntax characters escaped, no tag left."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split())).replace("<", "&lt;")


def _slug_free(feed: Feed, base: str) -> str:
    taken = set(Issue.objects.filter(newsletter=feed.newsletter, slug__startswith=base).values_list("slug", flat=True))
    slug, number = base, 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    return slug
