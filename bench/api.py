"""Benchmark: the API's list pages of 100 rows at 100,000 subscribers.

    .venv/bin/python bench/api.py [--database-url postgres://postgres@127.0.0.1:5432/digest_api_bench]
                                  [--subscribers 100000] [--repeat 21] [--budget-ms 10]

Seeds a fresh database (SQLite in a temporary directory by default) with three newsletters,
N subscribers with one subscription each, a bounce event for every tenth and 300 issues;
analyzes it; then asks each list call for a page of 100 through Django's test client with
a token, at the start, deep in the table (a cursor past N/2) and filtered by status or date.
Prints the median and worst time in the server (the test client's call, no network) and
the SQL queries per page, and exits non-zero if a median is over --budget-ms.
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import environment_ready, say, statistics_refresh  # noqa: E402

BATCH = 5000


def seed(*, subscribers: int, now: datetime.datetime) -> None:
    """Newsletters, subscribers with a subscription each, bounce events and issues, in batches."""
    from digest.models import BounceAction, BounceEvent, BounceKind
    from newsletters.models import Issue, Newsletter, Subscriber, Subscription
    from project.progress import Progress

    newsletters = [Newsletter.objects.create(name=f"Bench {n}", slug=f"bench-{n}") for n in range(3)]
    Issue.objects.bulk_create(
        Issue(
            newsletter=newsletters[i % 3],
            title=f"Issue {i}",
            slug=f"issue-{i}",
            body="## News\n\nBody.",
            status="published",
            publish_at=now - datetime.timedelta(days=i),
        )
        for i in range(300)
    )
    statuses = ["active"] * 96 + ["pending"] * 3 + ["suppressed"]
    with Progress(what="seeding subscribers", unit="rows", stream=sys.stdout, every=5) as progress:
        for start in range(0, subscribers, BATCH):
            made = Subscriber.objects.bulk_create(
                Subscriber(
                    email=f"reader{i}@example.com",
                    name=f"Reader {i}",
                    status=statuses[i % 100],
                    created_at=now - datetime.timedelta(minutes=subscribers - i),
                )
                for i in range(start, min(start + BATCH, subscribers))
            )
            if not made[0].pk:  # SQLite before RETURNING: read the ids back
                made = list(Subscriber.objects.filter(email__in=[s.email for s in made]))
            Subscription.objects.bulk_create(
                Subscription(
                    subscriber=s,
                    newsletter=newsletters[s.pk % 3],
                    frequency="weekly",
                    status="active" if s.status == "active" else "pending",
                )
                for s in made
            )
            BounceEvent.objects.bulk_create(
                BounceEvent(
                    subscriber=s,
                    kind=BounceKind.SOFT,
                    action=BounceAction.COUNTED,
                    source="bench",
                    occurred_at=now,
                    fingerprint=f"bench-{s.pk}",
                )
                for s in made
                if s.pk % 10 == 0
            )
            progress.update(min(start + BATCH, subscribers), subscribers)
    statistics_refresh()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL database to drop and recreate; default SQLite")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--budget-ms", type=float, default=10.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="api-bench-"))
    os.environ |= {"API_RATE_PER_MINUTE": "1000000", "API_LOG_LEVEL": "WARNING"}
    url, _ = environment_ready(args.database_url, workdir)

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.utils import timezone

    from api.pagination import cursor_make
    from api.tokens import token_create

    setup_test_environment()
    now = timezone.now()
    say(f"Seeding {args.subscribers:,} subscribers in {url.split('@')[-1]} …")
    seed(subscribers=args.subscribers, now=now)
    _, raw = token_create(name="bench", scopes=["read"])
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    middle = cursor_make(args.subscribers // 2)
    week_ago = (now - datetime.timedelta(days=7)).isoformat()
    pages = [
        ("/subscribers", {}),
        ("/subscribers", {"cursor": middle}),
        ("/subscribers", {"status": "pending", "cursor": middle}),
        ("/subscribers", {"created_after": week_ago}),
        ("/subscriptions", {"cursor": middle}),
        ("/subscriptions", {"status": "active", "newsletter": 2}),
        ("/bounces", {"cursor": cursor_make(args.subscribers // 20)}),
        ("/issues", {"status": "published"}),
        ("/newsletters", {}),
    ]
    say(f"{'page of 100':58} {'median':>8} {'worst':>8} {'queries':>8}")
    over = []
    for path, query in pages:
        query = {"limit": 100, **query}
        times = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(f"/api/v1{path}", query, secure=True)  # SITE_URL is https
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content
        median = statistics.median(times[1:])
        label = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items() if k != "limit") if len(query) > 1 else "")
        say(f"{label[:58]:58} {median:7.2f}ms {max(times[1:]):7.2f}ms {len(queries):8}")
        if median > args.budget_ms:
            over.append(label)
    if over:
        say(f"Over the {args.budget_ms} ms budget: {', '.join(over)}")
        return 1
    say(f"Every median within {args.budget_ms} ms.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
