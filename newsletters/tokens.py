"""Signed, purpose-bound tokens for links in emails (django.core.signing).

The salt names the purpose, so a token made for one purpose never reads as another, and
each payload is checked for the shape its purpose expects.
"""

from django.core import signing
from django.urls import reverse

from newsletters.conf import site_url

PURPOSES = ("unsubscribe", "preferences", "confirm")


class TokenInvalid(Exception):
    """Forged, tampered, foreign or malformed token."""


class TokenExpired(TokenInvalid):
    """A genuine token older than its purpose allows."""


def token_make(*, purpose: str, value) -> str:
    """Sign a JSON-serialisable value for one purpose (ids stay short; larger values are compressed)."""
    assert purpose in PURPOSES
    return signing.dumps(value, salt=f"newsletters.{purpose}", compress=not isinstance(value, int))


def token_read(token: str, *, purpose: str, kind: type, max_age: float | None = None):
    """Return the value a token was made for; raise TokenInvalid or TokenExpired."""
    assert purpose in PURPOSES
    try:
        value = signing.loads(token, salt=f"newsletters.{purpose}", max_age=max_age)
    except signing.SignatureExpired:
        raise TokenExpired(purpose) from None
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        raise TokenInvalid(purpose) from None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TokenInvalid(purpose)
    return value


def unsubscribe_url(subscription_id: int) -> str:
    """Absolute one-click unsubscribe URL of a subscription (List-Unsubscribe target)."""
    return _link("newsletters:unsubscribe", purpose="unsubscribe", value=subscription_id)


def preferences_url(subscriber_id: int) -> str:
    """Absolute URL of a subscriber's preferences page."""
    return _link("newsletters:preferences", purpose="preferences", value=subscriber_id)


def confirm_url(request: dict) -> str:
    """Absolute URL that confirms a subscription request (the request travels in the token)."""
    return _link("newsletters:confirm", purpose="confirm", value=request)


def _link(view: str, *, purpose: str, value) -> str:
    return site_url(reverse(view, kwargs={"token": token_make(purpose=purpose, value=value)}))
