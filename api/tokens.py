"""API tokens: made with a random secret, stored as its SHA-256, checked on every call.

A token reads `dgst_<prefix>_<secret>`. The prefix finds the row (unique, indexed); the
SHA-256 of the whole token is compared in constant time. A salted slow hash is not needed:
the secret is 32 random bytes, not a password a person chose.
"""

import datetime
import hashlib
import hmac
import secrets

from django.db.models import Q
from django.http import HttpRequest

from api.exceptions import Forbidden, NotAuthenticated
from api.models import ApiToken, Scope

TOKEN_PREFIX = "dgst_"
# last_used_at is written at most this often per token, not on every call.
LAST_USED_EVERY = datetime.timedelta(minutes=1)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_secret_set(token: ApiToken) -> str:
    """Give a token a new secret (its old one stops working once saved); return the secret, which is not stored."""
    token.prefix = secrets.token_hex(6)
    raw = f"{TOKEN_PREFIX}{token.prefix}_{secrets.token_urlsafe(32)}"
    token.secret_hash = _hash(raw)
    return raw


def token_create(
    *, name: str, scopes: list[str], expires_at: datetime.datetime | None = None, created_by=None
) -> tuple[ApiToken, str]:
    """Make a token; return it and its secret, which cannot be shown again."""
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValueError(f"Unknown scopes {', '.join(sorted(unknown))}; choose from {', '.join(Scope.values)}.")
    token = ApiToken(name=name, scopes=sorted(set(scopes)), expires_at=expires_at, created_by=created_by)
    raw = token_secret_set(token)
    token.full_clean(exclude=["created_by"])
    token.save()
    return token, raw


def token_authenticate(*, raw: str, now: datetime.datetime) -> ApiToken:
    """Return the token a caller presented; raise NotAuthenticated if it is unknown or expired."""
    head, _, rest = raw.removeprefix(TOKEN_PREFIX).partition("_")
    token = ApiToken.objects.filter(prefix=head).first() if raw.startswith(TOKEN_PREFIX) and rest else None
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(raw)):
        raise NotAuthenticated("The API token is missing or not valid. Send it as: Authorization: Bearer dgst_…")
    if token.expires_at is not None and token.expires_at <= now:
        raise NotAuthenticated(f"The API token {token.name!r} expired at {token.expires_at:%Y-%m-%d %H:%M %Z}.")
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
    return token


def bearer(request: HttpRequest) -> str:
    """The token in the Authorization header, or ''."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def request_token(request: HttpRequest, *, now: datetime.datetime) -> ApiToken:
    """The request's token, looked up once per request (the idempotency check and the endpoint share it)."""
    if not hasattr(request, "api_token"):
        request.api_token, request.api_token_error = None, None
        try:
            request.api_token = token_authenticate(raw=bearer(request), now=now)
        except NotAuthenticated as error:
            request.api_token_error = error
    if request.api_token is None:
        raise request.api_token_error
    return request.api_token


def scope_require(token: ApiToken, scope: str) -> None:
    """Refuse a call the token's scopes do not cover."""
    if scope not in token.scopes:
        raise Forbidden(f"The API token {token.name!r} lacks the {scope!r} scope this call needs.")
