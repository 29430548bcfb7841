"""A digest's list headers: one set, written verbatim on every path a message can take.

Python's email policies fold an over-long header value into RFC 2047 encoded-words, and
mail providers do not decode those in List-Unsubscribe: Gmail and Yahoo then find no URI,
so no unsubscribe button and no one-click. Each list header is therefore a `Verbatim`
value: plain ASCII, folded only at its own spaces. The email package stores and writes
such a value as it is (it asks a value with a `name` to fold itself), so Django's message
build (every backend but the fast path: SMTP subclasses, anymail, file, console) writes
the same bytes as the fast path (digest.fastmail); an ESP's API gets the unfolded value.

The headers (RFC 2369, 2919, 5064, 8058, and Gmail's Feedback-ID):
    List-Unsubscribe       <https://…/u/TOKEN/>[, <mailto:DIGEST_UNSUBSCRIBE_MAILTO?subject=…>]
    List-Unsubscribe-Post  List-Unsubscribe=One-Click
    List-Id                "Name" <list id>       the name quoted, or encoded-words if not ASCII
    List-Archive           <the newsletter's archive page>
    List-Help              <the site's front page>
    List-Post              NO                     readers cannot post to a digest
    Archived-At            <the issue's page>     only in a digest of one issue
    Feedback-ID            NEWEST-ISSUE:NEWSLETTER:digest:DIGEST_FEEDBACK_ID_SENDER
    Precedence             bulk
"""

import base64
import re

from django.urls import reverse

from digest.conf import digest_settings
from newsletters.conf import site_domain, site_url
from newsletters.models import Issue, Newsletter

FOLD_WIDTH = 78  # RFC 5322, 2.1.1: lines SHOULD stay under 78 characters
_MAX_LINE = 998  # RFC 5322, 2.1.1: lines MUST
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
# atext and spaces: a phrase that needs no quoting (RFC 5322, 3.2.3).
_ATOMS = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$")
# dot-atom-text: what a list id (RFC 2919, 2) and a Feedback-ID field may hold.
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$")


class Verbatim(str):
    """A header value the email package writes as it is: ASCII, folded only at its spaces.

    The string is the unfolded value (what an ESP's API gets, and what reading the header
    back gives); `fold()` is what the email package's generator writes.
    """

    name: str

    def __new__(cls, name: str, value: str) -> "Verbatim":
        if not _PRINTABLE.match(value):
            raise ValueError(f"the {name} header must be printable ASCII on one line: {value!r}")
        if any(len(word) + len(name) + 2 > _MAX_LINE for word in value.split(" ")):
            raise ValueError(f"the {name} header has a word too long for one line")
        self = super().__new__(cls, value)
        self.name = name
        return self

    def __getnewargs__(self) -> tuple[str, str]:
        # Copies (locmem's outbox, pickling for a task queue) rebuild it from both parts.
        return self.name, str(self)

    def fold(self, *, policy) -> str:
        """Return the field as the email package writes it: folded at spaces, with the policy's line ends."""
        return f"{self.name}: {self.folded(linesep=policy.linesep)}{policy.linesep}"

    def folded(self, *, linesep: str = "\r\n") -> str:
        """The value, a new line starting before a space where a line would pass FOLD_WIDTH.

        A word longer than a line stays whole on a line of its own (up to 998 characters):
        a URL is never cut, and unfolding (removing each CRLF) gives the value back.
        """
        words = self.split(" ")
        lines = [f"{self.name}: {words[0]}"]
        for word in words[1:]:
            if len(lines[-1]) + 1 + len(word) > FOLD_WIDTH:
                lines.append(" " + word)
            else:
                lines[-1] += " " + word
        return linesep.join(lines).removeprefix(f"{self.name}: ")


def phrase(text: str) -> str:
    """A display name as RFC 5322 writes it: atoms as they are, else quoted, else RFC 2047 encoded-words.

    The encoded-words are separated by spaces, where folding may break.
    """
    if _ATOMS.match(text) and text.strip() == text and "  " not in text:
        return text
    if text.isascii() and _PRINTABLE.match(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return " ".join(encoded_words(text))


def encoded_words(text: str) -> list[str]:
    """RFC 2047 encoded-words of a text, each of at most 45 bytes of UTF-8 (72 characters, under 75).

    Each is cut only between characters; whitespace between encoded-words is not part of
    the text (RFC 2047, 6.2).
    """
    words, chunk = [], b""
    for character in text:
        encoded = character.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return ["=?utf-8?b?" + base64.b64encode(word).decode("ascii") + "?=" for word in words]


def list_id(newsletter: Newsletter) -> str:
    """Return the newsletter's List-Id identifier (RFC 2919): its own, else slug.site-domain."""
    identifier = newsletter.list_id or f"{newsletter.slug}.{site_domain()}"
    if not _DOT_ATOM.match(identifier) or "." not in identifier:
        raise ValueError(f"the List-Id {identifier!r} is not a dot-separated ASCII name like weekly.example.com")
    return identifier


def list_id_header(newsletter: Newsletter) -> str:
    """Return the List-Id value: the quoted name, then the identifier (so no name reads as another id)."""
    return f"{phrase(newsletter.name)} <{list_id(newsletter)}>"


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


def list_unsubscribe(*, url: str, subscription_id: int) -> Verbatim:
    """One reader's List-Unsubscribe: the one-click URL first, then the mailto if configured."""
    value = f"<{url}>"
    if digest_settings.UNSUBSCRIBE_MAILTO:
        value += f", <mailto:{digest_settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe-{subscription_id}>"
    return Verbatim("List-Unsubscribe", value)
