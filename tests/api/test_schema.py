"""Schemathesis against /api/v1/openapi.json: generated calls to every operation, no 500, every answer as documented."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.tokens import token_create
from tests.factories import IssueFactory, NewsletterFactory, SubscriptionFactory

# Not positive_data_acceptance: a request the schema allows may still name a time zone, a
# newsletter or a cursor that does not exist, which the API refuses (422) by design.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
# Unknown query parameters are ignored, as Django views do (docs/api.md says so).
schema.config.generation.update(allow_extra_parameters=False)


@pytest.fixture
def _keep_the_test_connection():
    """As Django's test client does: a request's end must not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def raw_token(db, settings, smtp_server, _keep_the_test_connection):
    """A token with every scope, rows for the ids to find, and a mail server for confirmation mails."""
    settings.API_RATE_PER_MINUTE = 100_000
    settings.NEWSLETTERS_RATE_PER_CLIENT = 100_000
    newsletter = NewsletterFactory()
    for _ in range(3):
        IssueFactory(newsletter=newsletter)
        SubscriptionFactory(newsletter=newsletter)
    return token_create(name="schemathesis", scopes=["read", "subscribers", "issues"])[1]


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, raw_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {raw_token}"}, checks=CHECKS)
