"""VERP: each digest's envelope sender names its delivery, so a bounce maps to exactly one reader.

With DIGEST_BOUNCE_ADDRESS=bounces@news.example.org a delivery's envelope sender (the
Return-Path mail servers bounce to) is bounces+TOKEN@news.example.org. TOKEN is the
delivery id in base 36, a dash, and 12 base-32 characters of an HMAC of it under
SECRET_KEY (60 bits): short, only lowercase letters and digits (some MTAs lowercase local
parts), and nobody can make one for a delivery they were not sent.
"""

import base64
import re

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.utils.crypto import constant_time_compare, salted_hmac

from digest.conf import digest_settings

_SALT = "digest.verp"
_SIGNATURE_LENGTH = 12
# Anywhere in an address: "+", the id, "-", the signature, "@". Read case-insensitively.
_TOKEN = re.compile(r"\+([0-9a-z]{1,13})-([a-z2-7]{12})@", re.IGNORECASE)  # 12: _SIGNATURE_LENGTH
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# Different tokens checked in one returned message at most: a real one is in the first few
# headers (Delivered-To, then the original's Return-Path).
MAX_CANDIDATES = 16


def _signature(delivery_id: int) -> str:
    digest = salted_hmac(_SALT, str(delivery_id), algorithm="sha256").digest()
    return base64.b32encode(digest).decode("ascii")[:_SIGNATURE_LENGTH].lower()


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _DIGITS[rest] + digits
        if not number:
            return digits


def verp_token(delivery_id: int) -> str:
    """Return the signed token naming one delivery."""
    return f"{_base36(delivery_id)}-{_signature(delivery_id)}"


def verp_sender(delivery_id: int) -> str | None:
    """Return a delivery's envelope sender, bounces+TOKEN@domain; None without DIGEST_BOUNCE_ADDRESS."""
    address = digest_settings.BOUNCE_ADDRESS
    if not address:
        return None
    local, _, domain = address.rpartition("@")
    return f"{local}+{verp_token(delivery_id)}@{domain}"


def verp_delivery_id(text: str, *, candidates: int = MAX_CANDIDATES) -> tuple[int | None, bool]:
    """Find a VERP token in an address (or any text); return (delivery id, whether a token was there).

    The id is None when no token is found or its signature is wrong (a forged or damaged
    token); the flag tells the two apart, for the log. One pass over the text, and only the
    first `candidates` different tokens are checked: text stuffed with fake tokens costs
    a bounded number of HMACs.
    """
    tried: set[tuple[str, str]] = set()
    for match in _TOKEN.finditer(text):
        candidate = (match.group(1).lower(), match.group(2).lower())
        if candidate in tried:
            continue
        if len(tried) >= candidates:
            break
        tried.add(candidate)
        delivery_id = int(candidate[0], 36)
        if constant_time_compare(candidate[1], _signature(delivery_id)):
            return delivery_id, True
    return None, bool(tried)


def bounce_address_check(address: str) -> None:
    """Refuse a DIGEST_BOUNCE_ADDRESS that cannot carry a token: raise ImproperlyConfigured."""
    try:
        validate_email(address)
    except ValidationError:
        raise ImproperlyConfigured(
            f"DIGEST_BOUNCE_ADDRESS={address!r} is not a plain address such as bounces@news.example.org."
        ) from None
    if "+" in address.rpartition("@")[0]:
        raise ImproperlyConfigured(
            f"DIGEST_BOUNCE_ADDRESS={address!r}: the token is added after a '+'; use an address without one."
        )
