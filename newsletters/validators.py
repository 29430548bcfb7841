"""Field validators shared by models, forms and commands."""

import email.policy
import functools
import re
from email.errors import HeaderParseError
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import available_timezones

import idna
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q

from newsletters.conf import newsletters_settings

# Every C0 and C1 control (NUL, tab, CR, LF, the U+001C-U+001E separators that
# str.splitlines() treats as line ends, DEL, NEL) and the Unicode line/paragraph separators.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def validate_single_line(value: str) -> None:
    """Reject line breaks and other control characters, which could inject or break mail headers."""
    if value and (match := CONTROL_CHARACTERS.search(value)):
        char = match.group()
        if char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
            raise ValidationError("Line breaks are not allowed here.", code="newline")
        raise ValidationError(
            "Control characters (such as U+%(code)04X) are not allowed here.",
            code="control",
            params={"code": ord(char)},
        )


# A BCP 47 language tag as HTML's lang takes it: a language, then subtags (en, pt-BR, zh-Hant-TW).
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


def validate_language(value: str) -> None:
    """Accept a BCP 47 language tag such as en, de or pt-BR."""
    if not LANGUAGE_TAG.match(value):
        raise ValidationError(
            "%(value)s is not a language tag (such as en, de, he or pt-BR).", code="language", params={"value": value}
        )


@cache
def timezone_names() -> frozenset[str]:
    """Return the IANA time zone names this machine knows."""
    return frozenset(available_timezones()) | {"UTC"}


def validate_timezone(value: str) -> None:
    """Accept only IANA time zone names such as Europe/Paris."""
    if value not in timezone_names():
        raise ValidationError("%(value)s is not a known time zone.", code="timezone", params={"value": value})


def validate_attachment_size(file) -> None:
    """Refuse files larger than NEWSLETTERS_MAX_ATTACHMENT_BYTES."""
    limit = newsletters_settings.MAX_ATTACHMENT_BYTES
    if file.size > limit:
        raise ValidationError(
            "%(name)s is %(size)d bytes; attachments may be at most %(limit)d bytes.",
            code="too_large",
            params={"name": file.name, "size": file.size, "limit": limit},
        )


def validate_mailbox(value: str) -> None:
    """Accept one address, optionally with a display name: `news@example.com` or `News <news@example.com>`."""
    if not value:
        return
    validate_single_line(value)
    try:
        header = email.policy.default.header_factory("From", value)
    except (HeaderParseError, IndexError, ValueError):
        header = None  # the email package raises more than HeaderParseError on some garbage
    if header is None or header.defects or len(header.groups) != 1 or header.groups[0].display_name is not None:
        raise ValidationError(
            "%(value)s is not one email address; use news@example.com or “Name <news@example.com>”.",
            code="mailbox",
            params={"value": value},
        )
    try:
        validate_email(header.addresses[0].addr_spec)
    except ValidationError:
        raise ValidationError(
            "%(value)s is not a valid email address.", code="mailbox", params={"value": header.addresses[0].addr_spec}
        ) from None


# RFC 5322 dot-atom text (RFC 6531 adds every non-ASCII character): a local part of this
# shape means the same with or without quotes around it.
_DOT_ATOM = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+)*"
)
_QUOTED_PAIR = re.compile(r"\\(.)")


def email_normalize(value: str) -> str:
    """Return the address in one canonical form: domain lower case, Unicode, IDNA 2008; needless quotes dropped.

    `ann@xn--bcher-kva.example` and `ann@Bücher.example` are one reader, and so are
    `"ann"@example.com`, `"a\\nn"@example.com` and `ann@example.com` (RFC 5322 3.4.1: quoting
    a local part that needs none changes nothing). Otherwise the local part is kept as
    given: only the receiving server may interpret it.
    """
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValidationError("Enter a valid email address.", code="invalid")
    if len(local) > 2 and local[0] == local[-1] == '"':
        unquoted = _QUOTED_PAIR.sub(r"\1", local[1:-1])
        local = unquoted if _DOT_ATOM.fullmatch(unquoted) else local
    try:
        domain = _domain_canonical(domain)
    except idna.IDNAError as error:
        raise ValidationError(
            "The domain of %(value)s is not valid: %(error)s.", code="idna", params={"value": value, "error": error}
        ) from None
    return f"{local}@{domain}"


@functools.lru_cache(maxsize=4096)
def _domain_canonical(domain: str) -> str:
    """A domain in IDNA 2008 Unicode form; cached, as a list of readers has few domains and IDNA costs most of a row."""
    return idna.decode(idna.encode(domain, uts46=True))


def origins_parse(value: str) -> list[str]:
    """Read one origin a line ("https://blog.example.com", "http://localhost:8080"); raise ValidationError naming a bad one."""
    origins = []
    for line in filter(None, (part.strip() for part in value.splitlines())):
        parts = urlsplit(line)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port == -1
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ValidationError(
                "%(line)s is not an origin: write the scheme and host only, e.g. https://blog.example.com.",
                code="origin",
                params={"line": line},
            )
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return origins


def validate_origins(value: str) -> None:
    """Refuse anything but one web origin a line."""
    origins_parse(value)


HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def validate_hex_colour(value: str) -> None:
    """Refuse anything but a colour written #rrggbb."""
    if not HEX_COLOUR.fullmatch(value):
        raise ValidationError(
            "%(value)s is not a colour: write it as # and six hex digits, e.g. #0b5cad.",
            code="colour",
            params={"value": value},
        )


# A logo is drawn at most 200 px wide: a few hundred KB is plenty, and every reader downloads it.
LOGO_MAX_BYTES = 512 * 1024
LOGO_MAX_PIXELS = 4_000_000


def validate_logo(file) -> None:
    """Refuse a logo over LOGO_MAX_BYTES, or over LOGO_MAX_PIXELS (ImageField has checked it is an image)."""
    if file.size > LOGO_MAX_BYTES:
        raise ValidationError(
            "The logo is %(size)d KB; at most %(limit)d KB, please (it is drawn at most 200 px wide).",
            code="logo_size",
            params={"size": file.size // 1024, "limit": LOGO_MAX_BYTES // 1024},
        )
    width, height = getattr(file, "width", 0) or 0, getattr(file, "height", 0) or 0
    if width * height > LOGO_MAX_PIXELS:
        raise ValidationError(
            "The logo is %(width)d × %(height)d pixels; at most %(pixels)d million, please.",
            code="logo_pixels",
            params={"width": width, "height": height, "pixels": LOGO_MAX_PIXELS // 1_000_000},
        )


# The rules the database itself keeps, as check constraints the models declare.


def check_not_empty(field: str, name: str) -> models.CheckConstraint:
    """Refuse an empty value in the database itself (an empty slug has no URL)."""
    return models.CheckConstraint(condition=~Q(**{field: ""}), name=name)


def check_single_line(field: str, name: str) -> models.CheckConstraint:
    """Refuse CR and LF in a field that ends up in a mail header, in the database itself."""
    return models.CheckConstraint(
        condition=~Q(**{f"{field}__contains": "\n"}) & ~Q(**{f"{field}__contains": "\r"}),
        name=name,
    )
