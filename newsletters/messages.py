"""The message every mail to readers is built as: 7-bit, list headers verbatim, signed once built.

Digests (digest.sending.delivery), confirmation and welcome mails are all `ReaderEmail`s. Every
part is 7-bit (text quoted-printable or base64), so a relay without 8BITMIME or an ESP that
converts 8-bit parts (anymail does for Amazon SES) has nothing to re-encode after signing.
The signature itself is the digest app's (digest.rendering.dkim), installed here by its
AppConfig.ready() with `signer_install()`, since this app never imports digest.

Python's email policies fold an over-long header value into RFC 2047 encoded-words, and
mail providers do not decode those in List-Unsubscribe: Gmail and Yahoo then find no URI.
A `Verbatim` value (plain ASCII, folded only at its own spaces) is stored and written by
the email package as it is, since it folds itself: every backend writes the same bytes,
and an ESP's API gets the unfolded value.
"""

import base64
import email.message
import email.policy
import re
from collections.abc import Callable
from email.utils import make_msgid

from django.core.mail import EmailMultiAlternatives

from newsletters.conf import site_domain
from newsletters.models import Newsletter

FOLD_WIDTH = 78  # RFC 5322, 2.1.1: lines SHOULD stay under 78 characters
_MAX_LINE = 998  # RFC 5322, 2.1.1: lines MUST
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
# atext and spaces: a phrase that needs no quoting (RFC 5322, 3.2.3).
_ATOMS = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$")
# dot-atom-text: what a list id may hold (RFC 2919, 2).
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
    """Return the newsletter's List-Id identifier (RFC 2919): its own, else slug.site-domain.

    A slug or host in another script is written as IDNA writes a domain's labels (xn--…).
    """
    identifier = newsletter.list_id or f"{_ascii_label(newsletter.slug)}.{_ascii_label(site_domain())}"
    if not _DOT_ATOM.match(identifier) or "." not in identifier:
        raise ValueError(f"the List-Id {identifier!r} is not a dot-separated ASCII name like weekly.example.com")
    return identifier


def _ascii_label(name: str) -> str:
    if name.isascii():
        return name
    return ".".join(
        label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii") for label in name.split(".")
    )


def list_id_header(newsletter: Newsletter) -> str:
    """Return the List-Id value: the quoted name, then the identifier (so no name reads as another id)."""
    return f"{phrase(newsletter.name)} <{list_id(newsletter)}>"


_signer: Callable[[email.message.EmailMessage], None] | None = None


def signer_install(signer: Callable[[email.message.EmailMessage], None]) -> None:
    """Sign every ReaderEmail from now on: `signer` adds its header to the built message (or leaves it)."""
    global _signer
    _signer = signer


class ReaderEmail(EmailMultiAlternatives):
    """A Django email to a reader: every part 7-bit, a Message-ID on the site's host, then signed by the installed signer.

    Django's own Message-ID names the machine (often localhost, which filters score);
    one given in `headers` is kept.
    """

    def message(self, *, policy=email.policy.default):
        if not any(name.lower() == "message-id" for name in self.extra_headers):
            # Kept on the message, so every serialization of it (a retry, anymail's) has the same one.
            self.extra_headers["Message-ID"] = make_msgid(domain=site_domain())
        msg = super().message(policy=policy.clone(cte_type="7bit"))
        if _signer is not None:
            _signer(msg)
        return msg
