"""Test sends of an issue to a list of addresses, through the issue's email preview: checked, limited, logged."""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse

from tests.factories import IssueFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    cache.clear()  # the hourly quota is counted in the cache
    user = get_user_model().objects.create_user(
        "eda", email="eda@example.com", password="pw", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return user


def _send(client, issue, to):
    response = client.post(reverse("admin:newsletters_issue_send_test", args=[issue.pk]), {"to": to}, follow=True)
    return response.content.decode()


def test_a_test_goes_to_each_address_alone_and_is_logged(client, editor, smtp_server, caplog):
    issue = IssueFactory(title="Big news")
    with caplog.at_level(logging.INFO, logger="newsletters.testsends"):
        page = _send(client, issue, "ann@example.com, Bob@Example.COM;\nann@example.com")
    assert "Sent a test to ann@example.com, Bob@example.com." in page
    assert sorted(tuple(r.recipients) for r in smtp_server.received) == [("Bob@example.com",), ("ann@example.com",)]
    assert {r.message["Subject"] for r in smtp_server.received} == {"[TEST] Big news"}
    [line] = [r.getMessage() for r in caplog.records if r.name == "newsletters.testsends"]
    assert line == f"Test of issue {issue.pk} sent by eda to ann@example.com, Bob@example.com (2 message(s))"


def test_with_no_address_given_the_test_goes_to_the_editor(client, editor, smtp_server):
    page = _send(client, IssueFactory(), "")
    assert "Sent a test to eda@example.com." in page
    assert [r.recipients for r in smtp_server.received] == [["eda@example.com"]]


@pytest.mark.parametrize(
    "to,message",
    [
        ("ann@example.com, not-an-address", "&#x27;not-an-address&#x27; is not an email address; nothing was sent."),
        ("ann@example.com\r\nBcc: victim@example.com", "&#x27;Bcc:&#x27; is not an email address"),
        (", ".join(f"r{n}@example.com" for n in range(11)), "at most 10 (NEWSLETTERS_TEST_SEND_MAX_RECIPIENTS)"),
    ],
    ids=["invalid", "header-injection", "too-many"],
)
def test_a_bad_list_sends_nothing_and_says_why(client, editor, smtp_server, to, message):
    page = _send(client, IssueFactory(), to)
    assert "The test was not sent: " in page and message in page
    assert smtp_server.received == []


def test_an_editor_sends_at_most_the_hourly_quota(client, editor, smtp_server, settings):
    settings.NEWSLETTERS_TEST_SENDS_PER_HOUR = 3
    issue = IssueFactory()
    assert "Sent a test to" in _send(client, issue, "a@example.com, b@example.com")
    page = _send(client, issue, "c@example.com, d@example.com")
    assert "2 more would pass your 3 test messages an hour" in page
    assert len(smtp_server.received) == 2
    assert "Sent a test to" in _send(client, issue, "c@example.com")
    assert len(smtp_server.received) == 3
