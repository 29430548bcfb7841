"""Cursor pages: every row once, in id order, at a constant number of queries however many rows a page holds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.pagination import cursor_make
from digest.models import BounceAction, BounceEvent, BounceKind
from tests.api.conftest import assert_problem
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory


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


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/subscribers", {}),
        ("/subscribers", {"status": "active", "created_after": "2000-01-01T00:00:00Z"}),
        ("/subscribers", {"email": "reader@example.com"}),
        ("/subscriptions", {"status": "active", "newsletter": "NEWSLETTER"}),
        ("/bounces", {}),
        ("/issues", {"status": "published"}),
        ("/newsletters", {}),
    ],
)
def test_a_full_page_of_100_takes_at_most_three_queries(api, path, query, django_assert_max_num_queries):
    """Issue 28: no N+1 on a page of 100, filtered or not (the token, the page, the subscribers' subscriptions)."""
    newsletter = NewsletterFactory()
    for n in range(101):
        reader = {"subscriber": SubscriberFactory(email="Reader@Example.com")} if n == 50 else {}
        subscription = SubscriptionFactory(newsletter=newsletter, **reader)
        IssueFactory(newsletter=newsletter)
        BounceEvent.objects.create(
            subscriber=subscription.subscriber,
            kind=BounceKind.SOFT,
            action=BounceAction.COUNTED,
            source="test",
            occurred_at=subscription.created_at,
            fingerprint=f"bounce-{subscription.pk}",
        )
    query = {k: newsletter.pk if v == "NEWSLETTER" else v for k, v in query.items()}
    api.call("get", path, {"limit": 100, **query})  # the token's last_used stamp, once a minute
    with django_assert_max_num_queries(3):
        response = api.call("get", path, {"limit": 100, **query})
    assert response.status_code == 200
    page = response.json()
    expected = 1 if "email" in query else 100
    if path != "/newsletters":
        assert len(page["items"]) == expected
