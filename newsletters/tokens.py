"""Signed, purpose-bound tokens for links in emails (django.core.signing).

The salt names the purpose, so a token made for one purpose never reads as another.
"""

from django.conf import settings
from django.core import signing

PURPOSES = ("unsubscribe", "preferences", "confirm")


class TokenInvalid(Exception):
    """Forged, tampered, foreign or malformed token."""


class TokenExpired(TokenInvalid):
    """A genuine token older than its purpose allows."""


def token_make(*, purpose: str, pk: int) -> str:
    """Sign `pk` for one purpose."""
    assert purpose in PURPOSES
    return signing.dumps(pk, salt=f"newsletters.{purpose}")


def token_read(token: str, *, purpose: str, max_age: float | None = None) -> int:
    """Return the id a token was made for; raise TokenInvalid or TokenExpired."""
    assert purpose in PURPOSES
    try:
        value = signing.loads(token, salt=f"newsletters.{purpose}", max_age=max_age)
    except signing.SignatureExpired:
        raise TokenExpired(purpose) from None
    except signing.BadSignature:
        raise TokenInvalid(purpose) from None
    if not isinstance(value, int):
        raise TokenInvalid(purpose)
    return value


def unsubscribe_url(subscription_id: int) -> str:
    """Absolute one-click unsubscribe URL of a subscription (List-Unsubscribe target)."""
    return f"{settings.SITE_URL}/u/{token_make(purpose='unsubscribe', pk=subscription_id)}/"


def preferences_url(subscriber_id: int) -> str:
    """Absolute URL of a subscriber's preferences page."""
    return f"{settings.SITE_URL}/p/{token_make(purpose='preferences', pk=subscriber_id)}/"
