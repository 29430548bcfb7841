import pytest
from django.core.cache import cache
from django.test import Client

from api.tokens import token_create


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits are counted in the cache: each test starts with none used."""
    cache.clear()
    yield
    cache.clear()


class ApiClient(Client):
    """Django's test client speaking JSON to /api/v1/ with a bearer token."""

    def __init__(self, raw_token: str | None):
        super().__init__()
        self.raw_token = raw_token

    def call(self, method: str, path: str, data=None, **headers):
        if self.raw_token:
            headers.setdefault("Authorization", f"Bearer {self.raw_token}")
        kwargs = {"headers": headers}
        if method in ("get", "delete"):
            kwargs["query_params"] = data
        else:
            kwargs.update(data=data or {}, content_type="application/json")
        return getattr(self, method)(f"/api/v1{path}", **kwargs)


@pytest.fixture
def api_token(db):
    """A token with every scope, and its secret."""
    return token_create(name="crm-sync", scopes=["read", "subscribers", "issues"])


@pytest.fixture
def api(api_token):
    return ApiClient(api_token[1])


@pytest.fixture
def client_for(db):
    """A client whose token has only the given scopes."""

    def make(*scopes: str, **kwargs) -> ApiClient:
        _, raw = token_create(name=f"token-{'-'.join(scopes) or 'none'}", scopes=list(scopes), **kwargs)
        return ApiClient(raw)

    return make


def assert_problem(response, status: int) -> dict:
    """The response is an RFC 9457 problem with this status; return its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"] == "about:blank"
    return body
