"""The fast path: a group's MIME message built once, each recipient's bytes assembled cheaply.

Building a text+HTML message with the email package costs about a millisecond, most of
a naive sender's time. Here the email package builds one prototype per group, with
markers where personal values go; its bytes are split at the markers once. Per
recipient, only the personal headers and the personal values inside the bodies are
encoded: the bodies are quoted-printable, which encodes each piece on its own, so the
static pieces between personal values are encoded once per group. The pieces are
joined and handed to the SMTP connection of the configured Django mailer, so its host,
TLS, credentials and timeout apply.

The list headers (digest.rendering.headers) are Verbatim values (newsletters.messages): folded at
spaces only, the same bytes Django's message build writes for them.
"""

import binascii
import datetime
import email.policy
import hashlib
import html
import re
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from digest.rendering.content import PERSONAL_FIELDS, Personal, RenderedDigest, personal_values
from digest.rendering.dkim import Signer, body_canonical, lines_canonical
from newsletters.messages import Verbatim, encoded_words

# 7-bit: the bodies are quoted-printable already; a text attachment is encoded too, not sent
# 8-bit, so no relay or ESP re-encodes a part after signing (as newsletters.messages.ReaderEmail).
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


class GroupMessage:
    """One group's message with holes for To, Date, Message-ID, List-Unsubscribe and the two bodies."""

    def __init__(
        self,
        rendered: RenderedDigest,
        *,
        from_email: str,
        envelope_from: str,
        reply_to: str,
        headers: dict[str, Verbatim],
        signer: Signer | None = None,
    ):
        self.rendered = rendered
        self.signer = signer
        self.envelope_from = envelope_from
        tag = uuid.uuid4().hex.upper()
        self._markers = {name: f"XFASTX{name}X{tag}X" for name in ("TO", "DATE", "MSGID", "UNSUB", "TEXT", "HTML")}
        prototype = self._prototype(from_email=from_email, reply_to=reply_to, headers=headers)
        self.segments = _split(prototype.as_bytes(policy=_POLICY), self._markers)
        self.text = _body_pieces(rendered.text)
        self.html = _body_pieces(rendered.html)
        if signer:
            self._header_plan = signer.plan(_header_pieces(self.segments))
            self._body_plan = _body_plan(self.segments)
            self._text_canonical = [lines_canonical(p) if isinstance(p, bytes) else None for p in self.text]
            self._html_canonical = [lines_canonical(p) if isinstance(p, bytes) else None for p in self.html]

    def _prototype(self, *, from_email: str, reply_to: str, headers: dict[str, Verbatim]) -> EmailMessage:
        m = self._markers
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = self.rendered.subject
        message["From"] = from_email
        # set_raw: markers are not valid header values; the email package must not parse them.
        message.set_raw("To", m["TO"])
        if reply_to:
            message["Reply-To"] = reply_to
        message.set_raw("Date", m["DATE"])
        message.set_raw("Message-ID", m["MSGID"])
        message.set_raw("List-Unsubscribe", m["UNSUB"])
        for name, value in headers.items():
            message[name] = value
        message["MIME-Version"] = "1.0"
        bodies = []
        for marker, subtype in ((m["TEXT"], "plain"), (m["HTML"], "html")):
            part = EmailMessage(policy=_POLICY)
            part.set_content(marker, subtype=subtype, charset="utf-8", cte="7bit")
            part.replace_header("Content-Transfer-Encoding", "quoted-printable")
            bodies.append(part)
        if not self.rendered.attachments:
            message.make_alternative()
            for part in bodies:
                message.attach(part)
            return message
        alternative = EmailMessage(policy=_POLICY)
        alternative.make_alternative()
        for part in bodies:
            alternative.attach(part)
        message.make_mixed()
        message.attach(alternative)
        for file in self.rendered.attachments:
            message.attach(_attachment_part(file))
        return message

    def message_bytes(self, personal: Personal, *, address: str, message_id: str, date: str) -> bytes:
        """Assemble one recipient's message, DKIM-signed with a signer; `address` is the envelope form of personal.email."""
        values = personal_values(personal)
        text = _body_encode(self.text, values, escape=False)
        body = _body_encode(self.html, values, escape=True)
        holes = {
            "TO": _address_header(personal.name, address),
            "DATE": date.encode("ascii"),
            "MSGID": message_id.encode("ascii"),
            "UNSUB": Verbatim("List-Unsubscribe", personal.list_unsubscribe).folded().encode("ascii"),
            "TEXT": b"".join(text),
            "HTML": b"".join(body),
        }
        data = b"".join(piece if isinstance(piece, bytes) else holes[piece] for piece in self.segments)
        if not self.signer:
            return data
        return self._header_plan.field(holes, self._body_hash(text, body)) + data

    def _body_hash(self, text: list[bytes], body: list[bytes]) -> bytes:
        """The DKIM body hash of one reader's message, from pieces canonicalized once per group.

        Each reader's bodies differ (greeting, personal links), so the hash is per reader;
        but every piece ends a line, so the canonical form of the whole is the canonical
        pieces joined, and only the personal values are canonicalized here.
        """
        digest = hashlib.sha256()
        for step in self._body_plan:
            if isinstance(step, bytes):
                digest.update(step)
                continue
            encoded, canonical = (text, self._text_canonical) if step == "TEXT" else (body, self._html_canonical)
            for piece, static in zip(encoded, canonical, strict=True):
                digest.update(static if static is not None else lines_canonical(piece))
        return digest.digest()


_PERSONAL = re.compile("(" + "|".join(re.escape(marker) for marker in PERSONAL_FIELDS) + ")")


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends and a closing soft line break.

    The soft break ("=" at the end of a line) ends every piece, so pieces encoded apart
    can be joined without a line growing past 76 characters; decoding removes it.
    """
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n") + b"=\r\n"


def _body_pieces(body: str) -> list:
    """Split a rendered body at the personal markers: encoded static bytes and marker names."""
    if not body.endswith("\n"):
        body += "\n"  # as the email package's set_content() does
    return [piece if piece in PERSONAL_FIELDS else _qp(piece) for piece in _PERSONAL.split(body)]


def _body_encode(pieces: list, personal: dict[str, str], *, escape: bool) -> list[bytes]:
    """One reader's body as encoded pieces: the group's static bytes and this reader's values."""
    encoded = []
    for piece in pieces:
        if isinstance(piece, bytes):
            encoded.append(piece)
        else:
            value = personal[piece]
            encoded.append(_qp(html.escape(value) if escape else value))
    return encoded


def _header_pieces(segments: list) -> list:
    """The message header's segments, up to its closing CRLF: static bytes and the header holes by name."""
    end = next(i for i, piece in enumerate(segments) if isinstance(piece, bytes) and b"\r\n\r\n" in piece)
    last = segments[end]
    return [*segments[:end], last[: last.index(b"\r\n\r\n") + 2]]


def _body_plan(segments: list) -> list:
    """The message body's segments for DKIM: static ones canonicalized, the two body holes by name.

    Every segment ends a line, so each is canonicalized on its own; the last one (the
    closing MIME boundary) also gets the end-of-body rule.
    """
    end = next(i for i, piece in enumerate(segments) if isinstance(piece, bytes) and b"\r\n\r\n" in piece)
    if any(isinstance(piece, str) and piece not in ("TEXT", "HTML") for piece in segments[end:]):
        raise AssertionError("a header hole after the end of the header")
    body = [segments[end].split(b"\r\n\r\n", 1)[1], *segments[end + 1 :]]
    plan = [lines_canonical(piece) if isinstance(piece, bytes) else piece for piece in body]
    plan[-1] = body_canonical(body[-1])
    return [step for step in plan if step != b""]


def _split(data: bytes, markers: dict[str, str]) -> list:
    """Cut the prototype at each marker: a list of static bytes and marker names."""
    pieces: list = [data]
    for name, marker in markers.items():
        encoded = marker.encode("ascii")
        split: list = []
        for piece in pieces:
            if not isinstance(piece, bytes) or encoded not in piece:
                split.append(piece)
                continue
            parts = piece.split(encoded)
            for index, part in enumerate(parts):
                if index:
                    split.append(name)
                split.append(part)
        pieces = split
    found = {piece for piece in pieces if isinstance(piece, str)}
    if found != set(markers):
        raise AssertionError(f"markers lost in the prototype: {set(markers) - found}")
    # A body marker sits on its own line; an encoded body ends with CRLF already.
    return [
        piece.removeprefix(b"\r\n") if index and pieces[index - 1] in ("TEXT", "HTML") else piece
        for index, piece in enumerate(pieces)
        if piece != b""
    ]


def _attachment_part(file) -> EmailMessage:
    """Encode one file as Django would: UTF-8 text as text, anything else as base64 bytes."""
    maintype, _, subtype = file.mimetype.partition("/")
    content = file.path.read_bytes()
    part = EmailMessage(policy=_POLICY)
    if maintype == "text":
        try:
            part.set_content(content.decode("utf-8"), subtype=subtype, charset="utf-8", filename=file.filename)
            return part
        except UnicodeDecodeError:
            pass
    part.set_content(content, maintype=maintype, subtype=subtype, filename=file.filename)
    return part


def _address_header(name: str, address: str) -> bytes:
    """Format "Name <address>"; a non-ASCII name becomes RFC 2047 encoded-words, a line each."""
    if not name:
        return address.encode("ascii")
    if name.isascii():
        return formataddr((name, address)).encode("ascii")
    return ("\r\n ".join(encoded_words(name)) + f" <{address}>").encode("ascii")


def batch_date() -> str:
    """The Date header for messages sent now, as Django writes it."""
    return format_datetime(datetime.datetime.now(datetime.UTC))
