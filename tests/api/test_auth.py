"""Tokens: made in the admin with the secret shown once, stored hashed, scoped, expiring, every call logged."""

import datetime
import hashlib
import logging

from django.utils import timezone

from api.models import ApiToken
from tests.api.conftest import ApiClient, assert_problem
from tests.factories import NewsletterFactory


def test_a_call_without_a_token_is_refused_with_a_problem(db):
    response = ApiClient(None).call("get", "/newsletters")
    body = assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in body["detail"]


def test_a_forged_token_is_refused(api_token):
    token, raw = api_token
    forged = raw[:-4] + ("aaaa" if not raw.endswith("aaaa") else "bbbb")
    for bad in (forged, "dgst_nope_nope", "something-else"):
        assert_problem(ApiClient(bad).call("get", "/newsletters"), 401)


def test_only_the_hash_of_the_secret_is_stored(api_token):
    token, raw = api_token
    token.refresh_from_db()
    assert token.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiToken.objects.values().get())


def test_an_expired_token_is_refused_and_names_itself(client_for):
    api = client_for("read", expires_at=timezone.now() - datetime.timedelta(minutes=1))
    body = assert_problem(api.call("get", "/newsletters"), 401)
    assert "expired" in body["detail"]


def test_a_token_that_expires_later_works_until_then(client_for):
    api = client_for("read", expires_at=timezone.now() + datetime.timedelta(days=1))
    assert api.call("get", "/newsletters").status_code == 200


def test_each_scope_allows_only_its_calls(client_for):
    newsletter = NewsletterFactory()
    issue = {"newsletter": newsletter.pk, "title": "Hello", "body": "Hi."}
    reader = client_for("read")
    assert reader.call("get", "/newsletters").status_code == 200
    body = assert_problem(reader.call("post", "/issues", issue), 403)
    assert "'issues' scope" in body["detail"]
    writer = client_for("issues")
    assert_problem(writer.call("get", "/issues"), 403)
    assert writer.call("post", "/issues", issue).status_code == 201
    assert_problem(writer.call("post", "/subscribers", {"email": "a@example.com", "subscriptions": []}), 403)


def test_last_used_is_stamped(api, api_token):
    assert api_token[0].last_used_at is None
    api.call("get", "/newsletters")
    api_token[0].refresh_from_db()
    assert api_token[0].last_used_at is not None


def test_every_call_is_logged_with_the_tokens_name(api, caplog):
    with caplog.at_level(logging.INFO, logger="api"):
        api.call("get", "/newsletters")
        ApiClient(None).call("get", "/issues")
    lines = [record.getMessage() for record in caplog.records if record.name == "api"]
    assert lines[0].startswith("GET /api/v1/newsletters 200 ") and lines[0].endswith("token=crm-sync")
    assert lines[1].startswith("GET /api/v1/issues 401 ") and lines[1].endswith("token=-")


def test_the_admin_makes_a_token_and_shows_its_secret_once(admin_client):
    response = admin_client.post(
        "/admin/api/apitoken/add/", {"name": "ci-publisher", "scopes": ["issues", "read"]}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    raw = shown[0].split("<code>")[1].split("</code>")[0]
    token = ApiToken.objects.get(name="ci-publisher")
    assert token.scopes == ["issues", "read"] and token.created_by.username == "admin"
    assert ApiClient(raw).call("get", "/issues").status_code == 200
    page = admin_client.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    assert raw not in page and token.prefix in page
