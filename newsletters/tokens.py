"""Signed, purpose-bound tokens for links in emails (django.core.signing).

The salt names the purpose, so a token made for one purpose never reads as another, and
each payload is checked for the shape its purpose expects.
"""

import base64
import hashlib
import hmac
import time

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.encoding import force_bytes

from newsletters.conf import site_url

PURPOSES = ("unsubscribe", "preferences", "confirm", "undo", "erase", "keep")


class TokenInvalid(Exception):
    """Forged, tampered, foreign or malformed token."""


class TokenExpired(TokenInvalid):
    """A genuine token older than its purpose allows."""


# django.core.signing starts a compressed token with "."; in a URL that makes a path segment
# start with a dot, which filters score as a hidden path (rspamd URI_HIDDEN_PATH). "~" never
# occurs in a signed token, so it stands for that dot; links mailed with the dot still work.
_COMPRESSED, _COMPRESSED_IN_URL = ".", "~"


def token_make(*, purpose: str, value) -> str:
    """Sign a JSON-serialisable value for one purpose (ids stay short; larger values are compressed)."""
    assert purpose in PURPOSES
    if type(value) is int:
        return _id_token(purpose, value)
    token = signing.dumps(value, salt=f"newsletters.{purpose}", compress=not isinstance(value, int))
    if token.startswith(_COMPRESSED):
        token = _COMPRESSED_IN_URL + token.removeprefix(_COMPRESSED)
    return token


# An id's token is made once per reader per message, three times a digest: django.core.signing
# derives the HMAC key from the salt and SECRET_KEY (one SHA-256) and builds a signer on each
# call. _id_token makes the same token, byte for byte (a test checks it against
# signing.dumps), with the derived key kept per (purpose, SECRET_KEY) and the HMAC in one C call.
_KEYS: dict[tuple[str, str], bytes] = {}


def _signing_key(purpose: str) -> bytes:
    """The HMAC key Django's TimestampSigner derives for this purpose's salt (salted_hmac)."""
    secret = settings.SECRET_KEY
    key = _KEYS.get((purpose, secret))
    if key is None:
        salt = f"newsletters.{purpose}signer"
        key = _KEYS[(purpose, secret)] = hashlib.sha256(force_bytes(salt) + force_bytes(secret)).digest()
    return key


def _id_token(purpose: str, value: int) -> str:
    """signing.dumps(value, salt=f"newsletters.{purpose}") for an int: payload:timestamp:signature."""
    payload = base64.urlsafe_b64encode(str(value).encode()).rstrip(b"=").decode()
    signed = f"{payload}:{signing.b62_encode(int(time.time()))}"
    mac = hmac.digest(_signing_key(purpose), signed.encode(), "sha256")
    return f"{signed}:{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def token_read(token: str, *, purpose: str, kind: type, max_age: float | None = None):
    """Return the value a token was made for; raise TokenInvalid or TokenExpired."""
    assert purpose in PURPOSES
    if token.startswith(_COMPRESSED_IN_URL):
        token = _COMPRESSED + token.removeprefix(_COMPRESSED_IN_URL)
    try:
        value = signing.loads(token, salt=f"newsletters.{purpose}", max_age=max_age)
    except signing.SignatureExpired:
        raise TokenExpired(purpose) from None
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        raise TokenInvalid(purpose) from None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TokenInvalid(purpose)
    return value


def unsubscribe_token(subscription_id: int) -> str:
    """Sign a subscription's unsubscribe token: the URL's, and the mailto unsubscribe's subject."""
    return token_make(purpose="unsubscribe", value=subscription_id)


def unsubscribe_url(subscription_id: int, *, token: str | None = None) -> str:
    """Absolute one-click unsubscribe URL of a subscription (List-Unsubscribe target).

    Pass the token when the same one goes out elsewhere in the message too.
    """
    token = token or unsubscribe_token(subscription_id)
    return site_url(token_path("newsletters:unsubscribe", token))


def preferences_url(subscriber_id: int) -> str:
    """Absolute URL of a subscriber's preferences page."""
    return _link("newsletters:preferences", purpose="preferences", value=subscriber_id)


def keep_url(subscription_id: int) -> str:
    """The signed "keep it coming" link of a re-confirmation mail."""
    return _link("newsletters:keep", purpose="keep", value=subscription_id)


def confirm_url(request: dict) -> str:
    """Absolute URL that confirms a subscription request (the request travels in the token)."""
    return _link("newsletters:confirm", purpose="confirm", value=request)


def erase_url(subscriber_id: int, address_hash: str) -> str:
    """Absolute URL that deletes a reader (newsletters.privacy); bound to the address it was mailed to."""
    return _link("newsletters:erase", purpose="erase", value={"s": subscriber_id, "h": address_hash[:16]})


def data_url(subscriber_id: int) -> str:
    """Absolute URL of the download of everything held about a reader (a preferences token)."""
    return _link("newsletters:data", purpose="preferences", value=subscriber_id)


def _link(view: str, *, purpose: str, value) -> str:
    return site_url(token_path(view, token_make(purpose=purpose, value=value)))


_HOLE = "TOKENxHOLE"
_PATHS: dict[tuple, tuple[str, str]] = {}


def token_path(view: str, token: str) -> str:
    """reverse(view, kwargs={"token": token}), from the view's path cut once at the token.

    A signed token is base64url, ":", "~" and ".", which reverse() leaves unquoted, so
    filling the hole gives reverse()'s bytes (a test checks it); the cut is kept per URLconf
    and script prefix.
    """
    key = (view, settings.ROOT_URLCONF, get_urlconf(), get_script_prefix())
    shape = _PATHS.get(key)
    if shape is None:
        before, _, after = reverse(view, kwargs={"token": _HOLE}).partition(_HOLE)
        shape = _PATHS[key] = (before, after)
    return shape[0] + token + shape[1]


def undo_url(subscriber_id: int, subscription_ids: list[int]) -> str:
    """Absolute URL that undoes an unsubscribe of these subscriptions (valid UNDO_DAYS, newsletters.undo)."""
    return _link("newsletters:undo", purpose="undo", value={"s": subscriber_id, "ids": sorted(subscription_ids)})
