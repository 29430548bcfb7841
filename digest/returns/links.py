"""The counting redirect: /l/<token>/ counts one follow of one link of one issue, then redirects.

Never per reader: the token names the issue and the URL only. Mail scanners follow links
before people do (Microsoft Defender, Mimecast, Proofpoint, Barracuda…) and would make every
link look popular, so these are counted apart as scanner_clicks: HEAD requests, user agents of
known scanners and HTTP libraries, and a client that follows a third link of the same issue
within SCANNER_BURST_SECONDS (a person reads before clicking on). A token that is not ours is
a 404 and changes nothing: the redirect goes only to URLs that were in an issue.
"""

import hashlib
import re

from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.http import Http404, HttpResponseRedirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from digest.link_tokens import link_read
from digest.models import LinkCount
from newsletters.models import Issue
from newsletters.proxies import client_address

# Agents that fetch links to check them, not to read them.
SCANNER_AGENTS = re.compile(
    r"bot|crawler|spider|scan|preview|barracuda|mimecast|proofpoint|defender|safelinks|fortiguard|"
    r"python-requests|curl|wget|go-http-client|java/|okhttp|libwww|httpclient|headless",
    re.IGNORECASE,
)
# A client that follows this many different links of one issue within the window is a scanner.
SCANNER_BURST_LINKS = 3
SCANNER_BURST_SECONDS = 10


@require_http_methods(["GET", "HEAD"])
def link_follow(request, token: str):
    """Count this follow (or a scanner's), then redirect to the link's URL."""
    try:
        issue_id, url = link_read(token)
    except signing.BadSignature:
        raise Http404("This link is not valid.") from None
    link_count(issue_id=issue_id, url=url, scanner=_scanner(request, issue_id=issue_id, url=url))
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"  # every follow reaches us, none is served from a cache
    response["Referrer-Policy"] = "no-referrer"
    return response


def link_count(*, issue_id: int, url: str, scanner: bool) -> None:
    """Add one follow to the link's count (one UPDATE; the first follow makes the row)."""
    url_hash = hashlib.sha256(url.encode()).hexdigest()
    field = "scanner_clicks" if scanner else "clicks"
    now = timezone.now()
    if _count_add(issue_id=issue_id, url_hash=url_hash, field=field, now=now):
        return
    counted = LinkCount.objects.filter(issue_id=issue_id, url_hash=url_hash)
    if not Issue.objects.filter(pk=issue_id).exists():
        return  # the issue was deleted since: its links still lead on, uncounted
    try:
        with transaction.atomic():
            LinkCount.objects.create(issue_id=issue_id, url=url, url_hash=url_hash, last_at=now, **{field: 1})
    except IntegrityError:  # another follow made the row first
        counted.update(**{field: F(field) + 1}, last_at=now)


def _count_add(*, issue_id: int, url_hash: str, field: str, now) -> bool:
    """Add one to a link's existing count; False if it has no row yet.

    Every follow runs this: one UPDATE written once, instead of the ORM compiling the same
    statement per request (a third of the redirect's CPU, measured in-process).
    """
    meta = LinkCount._meta
    quote = connection.ops.quote_name
    column = quote(meta.get_field(field).column)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {column} = {column} + 1, {quote(meta.get_field('last_at').column)} = %s "
        f"WHERE {quote(meta.get_field('issue').column)} = %s AND {quote(meta.get_field('url_hash').column)} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [connection.ops.adapt_datetimefield_value(now), issue_id, url_hash])
        return cursor.rowcount > 0


def _scanner(request, *, issue_id: int, url: str) -> bool:
    if request.method == "HEAD" or SCANNER_AGENTS.search(request.headers.get("User-Agent", "") or "scanner"):
        return True
    key = f"digest.links:{client_address(request.META)}:{issue_id}"
    seen = cache.get(key) or []
    followed = {link for link in seen if link != url} | {url}
    cache.set(key, sorted(followed)[-SCANNER_BURST_LINKS:], timeout=SCANNER_BURST_SECONDS)
    return len(followed) >= SCANNER_BURST_LINKS
