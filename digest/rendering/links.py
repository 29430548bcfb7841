"""Links of an issue through the counting redirect, for newsletters with count_links on.

Each http(s) link of an issue's sanitized HTML becomes SITE_URL/l/<token>/, the token a
signature over (issue, URL): the redirect (digest.returns.links) sends only to URLs that were
in an issue, so it is never an open redirect, and it counts per issue and link, never per
reader (the same rewritten HTML goes to every reader of a group). mailto: links and links to
anchors stay as they are.
"""

from django.urls import reverse
from lxml import html as lxml_html

from digest.link_tokens import link_token
from newsletters.conf import site_url


def links_counted(safe_html: str, *, issue_id: int) -> str:
    """The issue's HTML with every http(s) link going through the counting redirect."""
    if "href" not in safe_html:
        return safe_html
    root = lxml_html.fragment_fromstring(safe_html, create_parent="div")
    for link in root.iter("a"):
        href = (link.get("href") or "").strip()
        if href.lower().startswith(("http://", "https://")):
            token = link_token(issue_id=issue_id, url=href)
            link.set("href", site_url(reverse("link_follow", kwargs={"token": token})))
    inner = (root.text or "") + "".join(lxml_html.tostring(child, encoding="unicode") for child in root)
    return inner
