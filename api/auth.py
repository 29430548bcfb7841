"""Who may call: a bearer token with the operation's scope, within the token's rate."""

import math

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle

from api.conf import api_settings
from api.models import ApiToken
from api.tokens import request_token, scope_require


class TokenAuth(HttpBearer):
    """Accept a valid, unexpired token that has `scope`: 401 without one, 403 without the scope."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        api_token = request_token(request, now=timezone.now())
        scope_require(api_token, self.scope)
        return api_token


class TokenThrottle(SimpleRateThrottle):
    """API_RATE_PER_MINUTE calls per token over a sliding minute, counted in the cache (CACHE_URL)."""

    scope = "api-token"

    def get_rate(self) -> str:
        return f"{api_settings.RATE_PER_MINUTE}/m"

    def allow_request(self, request: HttpRequest) -> bool:
        # The setting is read on each call, so a change (or a test's override) applies at once.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


def retry_after(wait: float | None) -> str:
    """Seconds for the Retry-After header: whole, at least one."""
    return str(max(1, math.ceil(wait or 1)))


READ, SUBSCRIBERS, ISSUES = TokenAuth("read"), TokenAuth("subscribers"), TokenAuth("issues")
