"""Field validators shared by models, forms and commands."""

from functools import cache
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError


def validate_single_line(value: str) -> None:
    """Reject CR, LF and other line breaks, which would let a value inject mail headers."""
    if value and any(ch in value for ch in "\r\n\x0b\x0c\x85\u2028\u2029"):
        raise ValidationError("Line breaks are not allowed here.", code="newline")


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
    limit = settings.NEWSLETTERS_MAX_ATTACHMENT_BYTES
    if file.size > limit:
        raise ValidationError(
            "%(name)s is %(size)d bytes; attachments may be at most %(limit)d bytes.",
            code="too_large",
            params={"name": file.name, "size": file.size, "limit": limit},
        )
