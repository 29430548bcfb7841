"""Benchmark: the editors' pages at 100,000 readers and a year of digests, on PostgreSQL.

    .venv/bin/python bench/dashboard.py [--database-url postgres://postgres@127.0.0.1:5432/digest_dashboard_bench]
                                        [--readers 100000] [--days 365] [--repeat 7]

Recreates the database, seeds it with SQL (three newsletters; readers in six time zones
with every frequency and status, joining and leaving over the period; a digest per reader
per send day, as the engine would have written them: about 17 million rows for the
defaults), analyzes it, then requests each editor page as a logged-in editor through
Django's test client: the admin index (the baseline), the dashboard overall and per
newsletter over 30, 90 and 365 days, an issue's report (recent and a year old), "who gets
it and when" for a draft, and the live preview. Prints the first request (which builds the
daily rollup once) and the median and worst of the next ones, SQL queries per page, and
checks every page's median against --budget (200 ms); exits non-zero if one is over.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import database_prepare, say, statistics_refresh  # noqa: E402

ZONES = ["UTC", "Europe/London", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Asia/Tokyo"]


def seed(*, readers: int, days: int, now: datetime.datetime) -> dict:
    """Fill the database with SQL: newsletters, issues, readers and `days` of digests. Returns what it made."""
    from django.db import connection

    from newsletters.models import Newsletter
    from project.progress import Progress

    newsletters = [
        Newsletter.objects.create(name=f"Bench {name}", slug=f"bench-{name}", send_time=datetime.time(8, 0))
        for name in ("daily-news", "weekly-notes", "ops")
    ]
    first_day = (now - datetime.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        # Issues on Mondays, Wednesdays and Fridays at 07:00, in every newsletter.
        cursor.execute(
            """
            INSERT INTO newsletters_issue (newsletter_id, title, slug, body, preheader, status, publish_at,
                                           created_at, updated_at)
            SELECT n.id, 'Issue ' || d::date, 'issue-' || d::date, '## News' || chr(10) || chr(10) || 'Body.', '',
                   'published', d + interval '7 hours', d, d
            FROM newsletters_newsletter n, generate_series(%s::timestamptz, %s::timestamptz, interval '1 day') d
            WHERE extract(isodow FROM d) IN (1, 3, 5)
            """,
            [first_day, now],
        )
        # Readers join evenly over the period; 3% pending, 2% paused, 4% gone, 1% suppressed.
        cursor.execute(
            """
            INSERT INTO newsletters_subscriber (email, name, timezone, status, confirmed_at, consecutive_failures, created_at)
            SELECT 'reader' || i || '@example.com', 'Reader ' || i, (%s::text[])[1 + i %% 6],
                   CASE WHEN i %% 100 < 3 THEN 'pending' WHEN i %% 100 = 99 THEN 'suppressed' ELSE 'active' END,
                   CASE WHEN i %% 100 < 3 THEN NULL ELSE %s::timestamptz + (i::bigint * %s / %s) * interval '1 second' END,
                   0, %s::timestamptz + (i::bigint * %s / %s) * interval '1 second'
            FROM generate_series(0, %s - 1) i
            """,
            [ZONES, first_day, days * 86400, readers, first_day, days * 86400, readers, readers],
        )
        cursor.execute(
            """
            INSERT INTO newsletters_subscription (subscriber_id, newsletter_id, frequency, status, unsubscribed_at,
                                                  created_at, updated_at)
            SELECT s.id, (%s::int[])[1 + s.id %% 3], (ARRAY['immediate', 'daily', 'weekly'])[1 + (s.id / 3) %% 3],
                   CASE WHEN s.status = 'pending' THEN 'pending' WHEN s.id %% 100 IN (3, 4) THEN 'paused'
                        WHEN s.id %% 100 BETWEEN 5 AND 8 THEN 'unsubscribed' ELSE 'active' END,
                   CASE WHEN s.id %% 100 BETWEEN 5 AND 8 THEN s.created_at + (%s::timestamptz - s.created_at) / 2 END,
                   s.created_at, s.created_at
            FROM newsletters_subscriber s
            """,
            [[n.pk for n in newsletters], now],
        )
        # A digest per active reader per send day since they joined: daily every day, weekly on
        # Mondays, immediate on issue days. Today's are still queued or deferred; earlier ones
        # sent, with 1% failed and 0.5% skipped.
        with Progress(what="seeding digests", unit="days", stream=sys.stdout, every=15) as progress:
            for day in range(days):
                end = first_day + datetime.timedelta(days=day + 1, hours=8)
                today = end.date() == now.date()
                cursor.execute(
                    """
                    INSERT INTO digest_delivery (subscription_id, newsletter_id, window_start, window_end, status,
                        attempts, last_error, message_id, claimed_by, claimed_at, next_attempt_at, sent_at,
                        created_at, updated_at)
                    SELECT s.id, s.newsletter_id,
                           %(end)s::timestamptz - CASE s.frequency WHEN 'weekly' THEN interval '7 days'
                                WHEN 'daily' THEN interval '1 day' ELSE interval '2 days' END,
                           %(end)s, CASE WHEN %(today)s THEN (CASE WHEN s.id %% 10 = 0 THEN 'deferred' ELSE 'pending' END)
                                WHEN s.id %% 200 = 1 THEN 'failed' WHEN s.id %% 200 = 2 THEN 'skipped' ELSE 'sent' END,
                           1, '', '<digest.' || s.id || '.' || %(day)s || '@bench>', 'bench', %(end)s, %(end)s,
                           CASE WHEN NOT %(today)s AND s.id %% 200 > 2 THEN %(end)s END, %(end)s, %(end)s
                    FROM newsletters_subscription s
                    WHERE s.created_at < %(end)s - interval '1 day'
                      AND (s.status IN ('active', 'paused') OR (s.status = 'unsubscribed' AND s.unsubscribed_at > %(end)s))
                      AND (s.frequency = 'daily'
                           OR (s.frequency = 'weekly' AND extract(isodow FROM %(end)s::timestamptz) = 1)
                           OR (s.frequency = 'immediate' AND extract(isodow FROM %(end)s::timestamptz) IN (1, 3, 5)))
                    """,
                    {"end": end, "today": today, "day": day},
                )
                progress.update(day + 1, days)
        cursor.execute("SELECT count(*) FROM digest_delivery")
        deliveries = cursor.fetchone()[0]
    statistics_refresh()
    return {"newsletters": newsletters, "deliveries": deliveries, "readers": readers}


def timed(client, method: str, url: str, *, data=None, repeat: int) -> dict:
    """Request a page once (first), then `repeat` times; queries of the last one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def once() -> float:
        started = time.perf_counter()
        response = client.post(url, data) if method == "POST" else client.get(url)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        return elapsed * 1000

    first = once()
    times = [once() for _ in range(repeat - 1)]
    with CaptureQueriesContext(connection) as queries:
        times.append(once())
    return {"first": first, "median": statistics.median(times), "worst": max(times), "queries": len(queries)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/digest_dashboard_bench")
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--budget", type=float, default=200.0, help="milliseconds a page's median may take")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run seeded, as it is")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("--database-url: the dashboard benchmark seeds PostgreSQL (postgres://…)")

    workdir = Path(tempfile.mkdtemp(prefix="digest-dashboard-bench-"))
    url = args.database_url if args.reuse else database_prepare(args.database_url, workdir)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "VAR_DIR": str(workdir),
            "DEBUG": "0",
            "SECRET_KEY": "benchmark-only-" + "x" * 40,
            "ALLOWED_HOSTS": "testserver",
            "SITE_URL": "https://news.example.com",
            # The test client speaks plain HTTP: no redirect to HTTPS (issue 16's production default).
            "SECURE_SSL_REDIRECT": "0",
            "DJANGO_SETTINGS_MODULE": "project.settings",
        }
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse
    from django.utils import timezone

    from digest.models import Delivery
    from newsletters.models import Issue, IssueStatus, Newsletter, Subscriber

    setup_test_environment()  # the test client's host and template signals, as in tests
    # With DEBUG=0 static files come from whitenoise's manifest, as in production.
    call_command("collectstatic", "--noinput", verbosity=0)
    now = timezone.now()
    if args.reuse:
        made = {
            "newsletters": list(Newsletter.objects.order_by("pk")),
            "deliveries": Delivery.objects.count(),
            "readers": Subscriber.objects.count(),
        }
        Issue.objects.filter(slug="next").delete()
        get_user_model().objects.filter(username="bench-editor").delete()
    else:
        say(f"Migrating {url.split('@')[-1]} …")
        call_command("migrate", verbosity=0, skip_checks=True)
        started = time.perf_counter()
        made = seed(readers=args.readers, days=args.days, now=now)
        say(
            f"Seeded {made['readers']:,} readers and {made['deliveries']:,} digests over {args.days} days "
            f"in {time.perf_counter() - started:.0f} s"
        )

    newsletter = made["newsletters"][0]
    recent = Issue.objects.filter(newsletter=newsletter, publish_at__lt=now - datetime.timedelta(days=2)).first()
    old = Issue.objects.filter(newsletter=newsletter).order_by("publish_at").first()
    draft = Issue.objects.create(
        newsletter=newsletter, title="Next", slug="next", body="Soon.", status=IssueStatus.DRAFT
    )
    editor = get_user_model().objects.create_superuser("bench-editor", "editor@example.com", "x")
    client = Client()
    client.force_login(editor)
    pages = [
        ("admin index (baseline)", "GET", reverse("admin:index"), None),
        ("dashboard, 30 days", "GET", reverse("dashboard"), None),
        ("dashboard, one newsletter", "GET", f"{reverse('dashboard')}?newsletter={newsletter.pk}", None),
        ("dashboard, 90 days", "GET", f"{reverse('dashboard')}?days=90", None),
        ("dashboard, a year", "GET", f"{reverse('dashboard')}?days=365", None),
        ("issue report, recent", "GET", reverse("admin:newsletters_issue_report", args=[recent.pk]), None),
        ("issue report, a year old", "GET", reverse("admin:newsletters_issue_report", args=[old.pk]), None),
        ("who gets it and when", "GET", reverse("admin:newsletters_issue_report", args=[draft.pk]), None),
        (
            "live preview",
            "POST",
            reverse("admin:newsletters_issue_live_preview"),
            {"newsletter": newsletter.pk, "title": "T", "body": "## Hi\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"},
        ),
    ]
    results = []
    for name, method, page_url, data in pages:
        results.append((name, timed(client, method, page_url, data=data, repeat=args.repeat)))
        say(f"  {name}: {results[-1][1]['median']:.0f} ms")

    baseline = results[0][1]["median"]
    say("")
    say(
        f"PostgreSQL {connection.pg_version // 10000}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {made['readers']:,} readers, {made['deliveries']:,} digests; "
        f"{args.repeat} requests per page (the first builds the daily rollup)."
    )
    say("| Page | First ms | Median ms | Worst ms | × baseline | SQL queries | ≤ budget |")
    say("|---|---|---|---|---|---|---|")
    ok = True
    for name, figures in results:
        within = figures["median"] <= args.budget
        ok &= within
        say(
            f"| {name} | {figures['first']:.0f} | {figures['median']:.0f} | {figures['worst']:.0f} | "
            f"{figures['median'] / baseline:.1f} | {figures['queries']} | {'yes' if within else 'NO'} |"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
