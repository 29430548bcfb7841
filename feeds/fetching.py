"""Reading one feed over HTTP, within a time and size budget, and parsing it with feedparser.

Every refusal raises FeedError with a sentence an editor can act on: the feed timed out, is
too large, is not well-formed XML, or redirects to another host (a feed that moved to another
site should be followed on purpose, by changing its address, not silently).
"""

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import feedparser

from feeds.exceptions import FeedError
from newsletters.conf import site_url

_CHUNK = 64 * 1024
# feedparser notes these and still reads the document whole: a wrong charset label or a
# text/html Content-Type are common and harmless.
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass(frozen=True)
class Entry:
    guid: str
    title: str
    link: str
    summary: str


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: list[Entry]


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only within the feed's own host (and port)."""

    def __init__(self, netloc: str):
        self.netloc = netloc

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urlsplit(newurl)
        if target.scheme not in ("http", "https") or target.netloc.lower() != self.netloc:
            raise FeedError(f"The feed redirects to another host ({newurl}); change its address if it moved.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def feed_download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    """Return the feed document at `url`, refusing more than `max_bytes` or more than `timeout` seconds."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeedError(f"{url!r} is not an http:// or https:// address.")
    opener = urllib.request.build_opener(_SameHostRedirects(parts.netloc.lower()))
    request = urllib.request.Request(
        url, headers={"User-Agent": f"digest-engine feeds ({site_url('/')})", "Accept-Encoding": "identity"}
    )
    deadline = time.monotonic() + timeout
    try:
        with opener.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(f"The feed is {int(declared):,} bytes, more than FEEDS_MAX_BYTES ({max_bytes:,}).")
            chunks, size = [], 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError(f"The feed is larger than FEEDS_MAX_BYTES ({max_bytes:,} bytes).")
                if time.monotonic() > deadline:
                    raise FeedError(f"The feed took more than {timeout:g} s to arrive (FEEDS_TIMEOUT).")
                chunks.append(chunk)
    except urllib.error.HTTPError as error:
        raise FeedError(f"The feed's server answered {error.code} {error.reason}.") from None
    except TimeoutError:
        raise FeedError(f"The feed's server did not answer within {timeout:g} s (FEEDS_TIMEOUT).") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise FeedError(f"The feed's server did not answer within {timeout:g} s (FEEDS_TIMEOUT).") from None
        reason = getattr(error.reason, "strerror", None) or error.reason
        raise FeedError(f"The feed cannot be reached: {reason}.") from None
    except (OSError, http.client.HTTPException) as error:
        raise FeedError(f"The feed cannot be read: {error}.") from None
    return b"".join(chunks)


def feed_parse(document: bytes) -> ParsedFeed:
    """Parse an RSS or Atom document; refuse one that is not well-formed or not a feed."""
    parsed = feedparser.parse(document, sanitize_html=False, resolve_relative_uris=False)
    if parsed.bozo and not isinstance(parsed.bozo_exception, _HARMLESS):
        raise FeedError(f"The feed is not well-formed XML: {parsed.bozo_exception}.")
    if not parsed.version:
        raise FeedError("The document is not an RSS or Atom feed.")
    entries = []
    for entry in parsed.entries:
        link = entry.get("link", "").strip()
        title = " ".join(entry.get("title", "").split())
        summary = entry.get("summary", "")
        guid = (entry.get("id") or link or f"{title}\n{summary}").strip()
        if guid:
            entries.append(Entry(guid=guid[:1000], title=title, link=link, summary=summary))
    return ParsedFeed(title=" ".join(parsed.feed.get("title", "").split())[:300], entries=entries)
