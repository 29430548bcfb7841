"""DKIM signatures (RFC 6376) on digests: rsa-sha256, relaxed/relaxed, over the bytes as sent.

Off unless DIGEST_DKIM_DOMAIN is set. Every digest's bytes differ per reader (the greeting,
the personal links in both bodies, To and List-Unsubscribe), so the body hash and the RSA
signature are computed per message. The RSA signature is made by OpenSSL through the
`cryptography` package; canonicalization is a few passes of bytes methods (C), and on the
fast path the group's static pieces are canonicalized once, so per reader only the
personal values are, and the hash runs over the joined pieces: about 0.4 ms of CPU per
message, two thirds of it RSA (README, "Benchmark"). dkimpy, pure Python, takes 7–9 ms;
the tests use it to verify what this module signs.

Both senders sign: digest.rendering.prebuilt signs each reader's assembled bytes, and message_sign()
the message Django's backends serialize (every newsletters.messages.ReaderEmail: digests on
other backends, test sends, confirmation and welcome mails).
"""

import base64
import email.message
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.exceptions import ImproperlyConfigured

from digest.conf import digest_settings
from digest.exceptions import SigningError

# Signed in this order. A name listed once more than the message has it ("oversigned")
# signs its absence, so nobody can add a second From, To, Date, Subject, Content-Type or
# List-Unsubscribe after signing and keep the signature valid (RFC 6376, 8.15).
SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
    "list-id", "list-unsubscribe", "list-unsubscribe-post", "list-archive", "list-help", "list-post",
    "archived-at", "feedback-id", "precedence", "auto-submitted",
)  # fmt: skip
OVERSIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
    "list-id", "list-unsubscribe", "list-unsubscribe-post", "list-archive",
    "list-help", "list-post", "archived-at", "feedback-id", "precedence", "auto-submitted",
)  # fmt: skip
# RFC 8301 allows 1024 bits for verifying, but 1024-bit RSA is within reach of a well-funded
# attacker, and Google, Microsoft and Yahoo ask senders for 2048: what dkim_keygen makes.
MIN_KEY_BITS = 2048

_WSP = re.compile(rb"[ \t]+")
# What may stand in d= and s= (RFC 6376, 3.5): DNS labels, so a setting cannot break the header.
_DOMAIN = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?:\.(?!-)[A-Za-z0-9-]{1,63})+$")
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$")
_FIELD_START = re.compile(rb"^(?![ \t])", re.MULTILINE)


def lines_canonical(lines: bytes) -> bytes:
    """Relaxed canonicalization of whole lines (CRLF line ends): each run of WSP one space, none at line ends.

    bytes.replace runs in C; a regular expression visiting every space of a 35 KB digest
    costs ten times as much.
    """
    lines = lines.replace(b"\t", b" ")
    while b"  " in lines:  # each pass halves every run of spaces
        lines = lines.replace(b"  ", b" ")
    return lines.replace(b" \r\n", b"\r\n")


def body_canonical(body: bytes) -> bytes:
    """The relaxed body canonicalization (RFC 6376, 3.4.4) of a body with CRLF line ends."""
    body = lines_canonical(body).rstrip(b"\r\n").removesuffix(b" ")
    return body + b"\r\n" if body else b""


def header_canonical(name: bytes, value: bytes) -> bytes:
    """The relaxed header canonicalization (RFC 6376, 3.4.2), without the closing CRLF."""
    return name.strip().lower() + b":" + _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")


def header_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Split a header block (CRLF line ends, no blank line) into (name, raw value) pairs."""
    fields = []
    for field in _FIELD_START.split(block):
        if not field:
            continue
        name, colon, value = field.partition(b":")
        if not colon:
            raise SigningError(f"not a header field: {field[:40]!r}")
        fields.append((name, value.removesuffix(b"\r\n")))
    return fields


@dataclass(frozen=True)
class Signer:
    """Sign messages for one domain and selector with one RSA key."""

    domain: str
    selector: str
    key: rsa.RSAPrivateKey

    def sign(self, message: bytes) -> bytes:
        """Return the message with a DKIM-Signature header field in front."""
        return self.signature_field(message) + message

    def signature_field(self, message: bytes) -> bytes:
        """Return the DKIM-Signature header field (folded, ending in CRLF) for a message with CRLF line ends."""
        end = message.find(b"\r\n\r\n")
        if end < 0:
            raise SigningError("the message has no blank line after its header")
        return self.field_for(message[: end + 2], hashlib.sha256(body_canonical(message[end + 4 :])).digest())

    def field_for(self, header: bytes, body_hash: bytes, *, timestamp: int | None = None) -> bytes:
        """Return the DKIM-Signature header field for a header block and the SHA-256 of the canonical body.

        t= is `timestamp` (seconds since the epoch), else now: receivers may judge a
        signature's age by it, and a replayed message shows when it was signed.
        """
        names, signed = _signed_fields(header_fields(header))
        return self._field(names, [header_canonical(name, value) for name, value in signed], body_hash, timestamp)

    def plan(self, header: list) -> "HeaderPlan":
        """Canonicalize a group's header once: `header` is its pieces, bytes and hole names (str).

        The fields without a hole are canonicalized here; HeaderPlan.field() does the rest per
        message, and gives field_for()'s bytes for the header with the holes filled.
        """
        holes = {piece: f"\x00{piece}\x00".encode() for piece in header if isinstance(piece, str)}
        block = b"".join(holes[piece] if isinstance(piece, str) else piece for piece in header)
        names, signed = _signed_fields(header_fields(block))
        steps = []
        for name, value in signed:
            filled = [hole for hole, marker in holes.items() if marker in value]
            steps.append((name, value, filled) if filled else header_canonical(name, value))
        return HeaderPlan(self, names, steps, holes)

    def _field(self, names: list[str], signed: list[bytes], body_hash: bytes, timestamp: int | None) -> bytes:
        signed_at = int(time.time()) if timestamp is None else timestamp
        words = ["v=1;", "a=rsa-sha256;", "c=relaxed/relaxed;", f"d={self.domain};", f"s={self.selector};"]
        words.append(f"t={signed_at};")
        words += [f"h={names[0]}:", *(f"{name}:" for name in names[1:-1]), f"{names[-1]};"]
        words += [f"bh={base64.b64encode(body_hash).decode('ascii')};", "b="]
        unsigned = _fold(words)
        data = b"\r\n".join(signed) + b"\r\n" + header_canonical(b"dkim-signature", unsigned.encode("ascii"))
        signature = base64.b64encode(self.key.sign(data, _PADDING, _SHA256)).decode("ascii")
        lines = [signature[start : start + 72] for start in range(0, len(signature), 72)]
        return ("DKIM-Signature: " + unsigned + "".join(f"\r\n\t{line}" for line in lines) + "\r\n").encode("ascii")


@dataclass(frozen=True)
class HeaderPlan:
    """A group's signed header fields, canonicalized but for the personal ones (Signer.plan)."""

    signer: Signer
    names: list[str]
    steps: list  # canonical bytes, or (name, raw value with hole markers, the holes in it)
    holes: dict[str, bytes]

    def field(self, values: dict[str, bytes], body_hash: bytes, *, timestamp: int | None = None) -> bytes:
        """The DKIM-Signature field of the header with each hole filled by `values` (hole name: bytes)."""
        signed = []
        for step in self.steps:
            if isinstance(step, bytes):
                signed.append(step)
                continue
            name, value, filled = step
            for hole in filled:
                value = value.replace(self.holes[hole], values[hole])
            signed.append(header_canonical(name, value))
        return self.signer._field(self.names, signed, body_hash, timestamp)


_PADDING, _SHA256 = padding.PKCS1v15(), hashes.SHA256()


def _signed_fields(fields: list[tuple[bytes, bytes]]) -> tuple[list[str], list[tuple[bytes, bytes]]]:
    """The h= names (oversigned) and the (name, raw value) pairs to sign, in signing order."""
    present: dict[bytes, list[bytes]] = {}
    for name, value in fields:
        present.setdefault(name.strip().lower(), []).append(value)
    if b"from" not in present:
        raise SigningError("the message has no From header field")
    names, signed = [], []
    for name in SIGNED_HEADERS:
        instances = present.get(name.encode(), [])
        # The last instance first (RFC 6376, 5.4.2); one name more than instances: oversigned.
        names += [name] * (len(instances) + (name in OVERSIGNED_HEADERS))
        signed += [(name.encode(), value) for value in reversed(instances)]
    return names, signed


def _fold(words: list[str], width: int = 76) -> str:
    """Join the words of a field's value with spaces, starting a new line (CRLF TAB) before `width`."""
    lines = [""]
    used = len("DKIM-Signature: ")
    for word in words:
        if lines[-1] and used + len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
            used = 1  # the TAB
        else:
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return "\r\n\t".join(lines)


def private_key_load(data: bytes, *, setting: str = "DIGEST_DKIM_KEY_FILE") -> rsa.RSAPrivateKey:
    """Read an unencrypted PEM RSA private key; ImproperlyConfigured names the setting if it is not one."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ImproperlyConfigured(f"{setting}: not an unencrypted PEM private key ({error}).") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured(f"{setting}: the key must be RSA (rsa-sha256), not {type(key).__name__}.")
    if key.key_size < MIN_KEY_BITS:
        raise ImproperlyConfigured(
            f"{setting}: a {key.key_size}-bit key is too short; use {MIN_KEY_BITS} bits (manage.py dkim_keygen)."
        )
    return key


def key_file_exposure(path: Path) -> str:
    """Say who besides its owner may read a key file ("" when nobody may, or it cannot be read)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return ""
    if mode & 0o077:
        return f"{path} is readable by {'everyone' if mode & 0o004 else 'its group'} (mode {mode & 0o777:o})"
    return ""


def dkim_signer() -> Signer | None:
    """The configured signer, or None when DIGEST_DKIM_DOMAIN is empty (signing is off)."""
    domain, selector, key_file = (
        digest_settings.DKIM_DOMAIN,
        digest_settings.DKIM_SELECTOR,
        digest_settings.DKIM_KEY_FILE,
    )
    if not domain:
        if selector or key_file:
            raise ImproperlyConfigured("DIGEST_DKIM_DOMAIN: set it too, or unset DIGEST_DKIM_SELECTOR and _KEY_FILE.")
        return None
    for name, value in (("DIGEST_DKIM_SELECTOR", selector), ("DIGEST_DKIM_KEY_FILE", key_file)):
        if not value:
            raise ImproperlyConfigured(f"{name}: required when DIGEST_DKIM_DOMAIN is set.")
    names_check(domain=domain, selector=selector)
    path = Path(key_file)
    try:
        status = path.stat()
    except OSError as error:
        raise ImproperlyConfigured(f"DIGEST_DKIM_KEY_FILE: cannot read {key_file}: {error.strerror}.") from None
    if not stat.S_ISREG(status.st_mode):  # a FIFO or a device would hang or feed anything
        raise ImproperlyConfigured(f"DIGEST_DKIM_KEY_FILE: {key_file} is not a regular file.")
    return _signer(domain.lower(), selector, str(path), status.st_mtime_ns)


def names_check(*, domain: str, selector: str) -> None:
    """Raise ImproperlyConfigured unless the domain and selector are DNS names (IDNs as A-labels)."""
    if not _DOMAIN.match(domain):
        raise ImproperlyConfigured(f"DIGEST_DKIM_DOMAIN: {domain!r} is not a domain name (e.g. news.example.com).")
    if not _SELECTOR.match(selector):
        raise ImproperlyConfigured(f"DIGEST_DKIM_SELECTOR: {selector!r} is not a DNS label (e.g. digest2026).")


@lru_cache(maxsize=4)
def _signer(domain: str, selector: str, path: str, mtime_ns: int) -> Signer:
    # Cached per key file version: a run reads the key once; a replaced key is read again.
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(f"DIGEST_DKIM_KEY_FILE: cannot read {path}: {error.strerror}.") from None
    return Signer(domain=domain, selector=selector, key=private_key_load(data))


def dns_record(key: rsa.RSAPrivateKey) -> str:
    """The TXT record value that publishes a key's public half: v=DKIM1; k=rsa; p=…"""
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"


def dns_zone_line(*, domain: str, selector: str, key: rsa.RSAPrivateKey) -> str:
    """The record as a zone file line; DNS strings hold at most 255 characters, so a long value is split."""
    value = dns_record(key)
    strings = " ".join(f'"{value[start : start + 250]}"' for start in range(0, len(value), 250))
    return f"{selector}._domainkey.{domain}. IN TXT ( {strings} )"


def key_create(path: Path, *, bits: int = 2048) -> rsa.RSAPrivateKey:
    """Make an RSA key and write it to a new file only its owner can read; never replace a file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with open(path, "xb", opener=lambda name, flags: os.open(name, flags, 0o600)) as handle:
        handle.write(data)
    return key


def message_sign(msg: email.message.EmailMessage) -> None:
    """Add a DKIM-Signature to a message Django built (newsletters.messages.ReaderEmail), if signing is on.

    Installed as the signer of every mail to readers by DigestConfig.ready().
    """
    signer = dkim_signer()
    if signer is None:
        return
    # The SMTP backend serializes with policy.SMTP (CRLF); any other with its own line
    # ends, which the signature does not see: sign the CRLF form of the same bytes.
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    field = signer.signature_field(data).decode("ascii")
    name, _, value = field.partition(": ")
    # set_raw: the value is already folded, with lines under 78 characters, so the email
    # package writes it as it is; the serialization after this one is the same bytes.
    msg.set_raw(name, value.removesuffix("\r\n").replace("\r\n", msg.policy.linesep))
