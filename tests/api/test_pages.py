"""Cursor pages: every row once, in id order, at a constant number of queries however many rows a page holds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.pagination import cursor_make
from digest.models import BounceAction, BounceEvent, BounceKind
from tests.api.conftest import assert_problem
from tests.factories import IssueFactory, NewsletterFactory, SubscriptionFactory


def test_cursors_walk_every_row_once(api):
    newsletter = NewsletterFactory()
    made = [IssueFactory(newsletter=newsletter).pk for _ in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.call("get", "/issues", query).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made and pages == 3


def test_a_row_added_between_pages_is_not_lost(api):
    first = SubscriptionFactory()
    page = api.call("get", "/subscriptions", {"limit": 1}).json()
    assert [item["id"] for item in page["items"]] == [first.pk] and page["next_cursor"] is None
    second = SubscriptionFactory()
    page = api.call("get", "/subscriptions", {"limit": 1, "cursor": cursor_make(first.pk)}).json()
    assert [item["id"] for item in page["items"]] == [second.pk]


@pytest.mark.parametrize("cursor", ["%%%", "LTE", "bm90LWEtbnVtYmVy"])  # not base64, -1, "not-a-number"
def test_a_cursor_the_api_did_not_make_is_refused(api, cursor):
    body = assert_problem(api.call("get", "/newsletters", {"cursor": cursor}), 422)
    assert body["errors"][0]["field"] == "cursor"


def test_a_page_larger_than_100_is_refused(api):
    assert_problem(api.call("get", "/subscribers", {"limit": 101}), 422)


@pytest.mark.parametrize("path", ["/newsletters", "/issues", "/subscribers", "/subscriptions", "/bounces"])
def test_list_queries_do_not_grow_with_the_page(api, path):
    newsletter = NewsletterFactory()

    def queries() -> int:
        api.call("get", path, {"limit": 100})  # warm: the token's last_used stamp
        with CaptureQueriesContext(connection) as captured:
            assert api.call("get", path, {"limit": 100}).status_code == 200
        return len(captured)

    def add(count: int) -> None:
        for _ in range(count):
            subscription = SubscriptionFactory(newsletter=newsletter)
            IssueFactory(newsletter=newsletter)
            BounceEvent.objects.create(
                subscriber=subscription.subscriber,
                kind=BounceKind.SOFT,
                action=BounceAction.COUNTED,
                source="test",
                occurred_at=subscription.created_at,
                fingerprint=f"bounce-{subscription.pk}",
            )

    add(2)
    few = queries()
    add(20)
    assert queries() == few <= 3
