"""Every error is an RFC 9457 problem, even for paths and methods the API does not have; the docs need no CDN."""

from tests.api.conftest import ApiClient, assert_problem
from tests.factories import NewsletterFactory
from tests.smtp import SMTPServer


def test_an_unknown_path_is_a_problem(api):
    body = assert_problem(api.call("get", "/nowhere"), 404)
    assert body["instance"] == "/api/v1/nowhere"


def test_a_method_the_path_lacks_is_a_problem(api):
    response = api.call("put", "/newsletters")
    assert_problem(response, 405)
    assert "GET" in response["Allow"]


def test_a_body_that_is_not_json_is_a_problem(api):
    response = api.post(
        "/api/v1/issues",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.raw_token}"},
    )
    assert_problem(response, 400)


def test_the_schema_and_docs_are_public_and_served_from_this_site(db):
    client = ApiClient(None)
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.") and "/api/v1/subscribers" in schema["paths"]
    problem = schema["paths"]["/api/v1/issues"]["post"]["responses"]["422"]["content"]
    assert list(problem) == ["application/problem+json"]
    page = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page and "cdn" not in page.lower()


def test_a_moment_the_database_cannot_hold_is_refused_or_moved_to_utc(api):
    # PostgreSQL refuses offsets past ±15:59, which Python allows; the API compares in UTC.
    assert api.call("get", "/subscribers", {"created_after": "2026-01-01T00:00:00-22:27"}).status_code == 200
    assert_problem(api.call("get", "/subscribers", {"created_after": "0001-01-01T00:00:00+05:00"}), 422)
    assert_problem(api.call("get", "/subscribers", {"created_after": "1700000000"}), 422)
    assert_problem(api.call("get", "/subscribers", {"created_after": "2026-01-01T00:00:00"}), 422)  # no offset


def test_a_server_failure_is_a_problem_and_its_idempotency_key_may_be_retried(api, settings):
    newsletter = NewsletterFactory()
    payload = {"email": "ann@example.com", "subscriptions": [{"newsletter": newsletter.pk}]}
    down = SMTPServer()  # a free port nothing listens on: the confirmation mail cannot go
    settings.MAILERS = {"default": down.mailer()}
    api.raise_request_exception = False
    response = api.call("post", "/subscribers", payload, **{"Idempotency-Key": "signup-1"})
    body = assert_problem(response, 500)
    assert "logged" in body["detail"]
    with down:
        settings.MAILERS = {"default": down.mailer()}
        assert api.call("post", "/subscribers", payload, **{"Idempotency-Key": "signup-1"}).status_code == 202
    assert [mail.recipients for mail in down.received] == [["ann@example.com"]]
