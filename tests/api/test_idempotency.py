"""Idempotency-Key on POST and the rate limit per token."""

import datetime

import pytest
from django.utils import timezone

from api.idempotency import STALE
from api.models import IdempotentAnswer
from newsletters.models import Issue
from tests.api.conftest import ApiClient, assert_problem
from tests.factories import NewsletterFactory


@pytest.fixture
def draft(db):
    return {"newsletter": NewsletterFactory().pk, "title": "Once", "body": "Only once."}


def test_a_retry_with_the_same_key_replays_the_answer_and_changes_nothing(api, draft):
    first = api.call("post", "/issues", draft, **{"Idempotency-Key": "k-1"})
    again = api.call("post", "/issues", draft, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert Issue.objects.count() == 1
    other = api.call("post", "/issues", {**draft, "title": "Twice"}, **{"Idempotency-Key": "k-2"})
    assert other.status_code == 201 and Issue.objects.count() == 2


def test_a_key_reused_for_another_request_is_refused(api, draft):
    api.call("post", "/issues", draft, **{"Idempotency-Key": "k-1"})
    body = assert_problem(api.call("post", "/issues", {**draft, "title": "Other"}, **{"Idempotency-Key": "k-1"}), 422)
    assert "another request" in body["detail"]
    assert Issue.objects.count() == 1


def test_a_key_still_running_is_a_conflict_until_its_call_is_abandoned(api, draft):
    api.call("post", "/issues", draft, **{"Idempotency-Key": "k-1"})
    # As if the first call were still running: no answer stored yet, and no issue committed.
    IdempotentAnswer.objects.update(status=None, body=b"")
    Issue.objects.all().delete()
    assert_problem(api.call("post", "/issues", draft, **{"Idempotency-Key": "k-1"}), 409)
    assert not Issue.objects.exists()
    # Its process died: after STALE a retry runs it.
    IdempotentAnswer.objects.update(created_at=timezone.now() - STALE - datetime.timedelta(seconds=1))
    assert api.call("post", "/issues", draft, **{"Idempotency-Key": "k-1"}).status_code == 201
    assert Issue.objects.count() == 1


def test_keys_are_forgotten_after_their_hours(api, draft, settings):
    api.call("post", "/issues", draft, **{"Idempotency-Key": "old"})
    IdempotentAnswer.objects.update(created_at=timezone.now() - datetime.timedelta(hours=25))
    api.call("post", "/issues", {**draft, "title": "New"}, **{"Idempotency-Key": "new"})
    assert list(IdempotentAnswer.objects.values_list("key", flat=True)) == ["new"]


def test_keys_are_per_token(api, client_for, draft):
    other = client_for("issues")
    api.call("post", "/issues", draft, **{"Idempotency-Key": "shared"})
    response = other.call("post", "/issues", {**draft, "title": "Theirs"}, **{"Idempotency-Key": "shared"})
    assert response.status_code == 201 and Issue.objects.count() == 2


def test_refusals_that_say_try_again_are_not_kept(client_for, draft):
    reader = client_for("read")
    assert_problem(reader.call("post", "/issues", draft, **{"Idempotency-Key": "k"}), 403)
    assert not IdempotentAnswer.objects.exists()


def test_a_bad_key_is_refused(api, draft):
    assert_problem(api.call("post", "/issues", draft, **{"Idempotency-Key": "x" * 256}), 422)
    assert not Issue.objects.exists()


def test_the_rate_limit_counts_per_token(api, client_for, settings):
    settings.API_RATE_PER_MINUTE = 3
    for _ in range(3):
        assert api.call("get", "/newsletters").status_code == 200
    response = api.call("get", "/newsletters")
    body = assert_problem(response, 429)
    assert "crm-sync" in body["detail"] and 1 <= int(response["Retry-After"]) <= 60
    assert client_for("read").call("get", "/newsletters").status_code == 200
    assert_problem(ApiClient(None).call("get", "/newsletters"), 401)
