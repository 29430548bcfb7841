"""A digest's list headers: one set, written verbatim on every path a message can take.

Each is a newsletters.messages.Verbatim value: plain ASCII, folded only at its own spaces,
never RFC 2047-encoded (Gmail and Yahoo find no unsubscribe URI in an encoded-word). So
Django's message build (every backend but the fast path: SMTP subclasses, anymail, file,
console) writes the same bytes as the fast path (digest.rendering.prebuilt); an ESP's API gets the
unfolded value.

The headers (RFC 2369, 2919, 5064, 8058, and Gmail's Feedback-ID):
    List-Unsubscribe       <https://…/u/TOKEN/>[, <mailto:DIGEST_UNSUBSCRIBE_MAILTO?subject=unsubscribe%20TOKEN>]
    List-Unsubscribe-Post  List-Unsubscribe=One-Click
    List-Id                "Name" <list id>       the name quoted, or encoded-words if not ASCII
    List-Archive           <the newsletter's archive page>
    List-Help              <the site's front page>
    List-Post              NO                     readers cannot post to a digest
    Archived-At            <the issue's page>     only in a digest of one issue
    Feedback-ID            NEWEST-ISSUE:NEWSLETTER:digest:DIGEST_FEEDBACK_ID_SENDER
    Precedence             bulk
"""

from urllib.parse import quote

from django.urls import reverse

from digest.conf import digest_settings
from newsletters.conf import site_domain, site_url
from newsletters.messages import Verbatim, list_id_header
from newsletters.models import Issue, Newsletter


def feedback_id(newsletter: Newsletter, issue_ids: list[int]) -> str:
    """Gmail's Feedback-ID, campaign:newsletter:mail type:sender; complaints are counted per field."""
    sender = digest_settings.FEEDBACK_ID_SENDER or site_domain()
    return f"{max(issue_ids)}:{newsletter.pk}:digest:{sender}"


def list_headers(*, newsletter: Newsletter, issue_ids: list[int]) -> dict[str, Verbatim]:
    """The list headers a group's digests share, in the order they are written.

    Raises ValueError when a value cannot go out verbatim (a List-Id that is not ASCII).
    """
    values = {
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": list_id_header(newsletter),
        "List-Archive": f"<{site_url(newsletter.get_absolute_url())}>",
        "List-Help": f"<{site_url(reverse('newsletters:home'))}>",
        "List-Post": "NO",
    }
    if len(issue_ids) == 1:
        issue = Issue.objects.filter(pk=issue_ids[0]).only("slug").first()
        if issue is not None:
            path = reverse("newsletters:issue", kwargs={"slug": newsletter.slug, "issue_slug": issue.slug})
            values["Archived-At"] = f"<{site_url(path)}>"
    values["Feedback-ID"] = feedback_id(newsletter, issue_ids)
    values["Precedence"] = "bulk"
    return {name: Verbatim(name, value) for name, value in values.items()}


def list_unsubscribe(*, url: str, token: str) -> Verbatim:
    """One reader's List-Unsubscribe: the one-click URL first, then the mailto if configured.

    The mailto's subject carries the URL's signed token, so whatever reads that mailbox can
    tell a reader's request from a forged one (newsletters.tokens.token_read); a bare
    subscription id would let anyone unsubscribe anyone.
    """
    value = f"<{url}>"
    if digest_settings.UNSUBSCRIBE_MAILTO:
        # A signed token is base64url, ":" and "~": characters a mailto: URI keeps as they are (RFC 6068).
        subject = quote(f"unsubscribe {token}", safe=":~")
        value += f", <mailto:{digest_settings.UNSUBSCRIBE_MAILTO}?subject={subject}>"
    return Verbatim("List-Unsubscribe", value)
