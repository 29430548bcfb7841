"""PostgreSQL's set-based planning plans exactly what the Python path plans (the reference, SQLite's path)."""

import datetime

import pytest
from django.db import connection, transaction

from digest.models import Delivery, Installation
from digest.planning.due import subscriptions_schedule
from digest.planning.plan import deliveries_plan_python
from digest.planning.plan_sql import deliveries_plan_sql
from newsletters.models import Subscription
from tests.digest.conftest import World, at

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based path is PostgreSQL's"),
]


def outcome(plan) -> tuple:
    """Plan inside a savepoint, return what it wrote, and undo it."""
    with transaction.atomic():
        subscriptions_schedule(now=NOW)
        counts = plan(now=NOW, progress=None)
        deliveries = sorted(
            Delivery.objects.values_list(
                "subscription_id", "newsletter_id", "window_start", "window_end", "status", "message_id"
            )
        )
        cursors = sorted(Subscription.objects.values_list("id", "cursor", "next_due_at"))
        transaction.set_rollback(True)
    return dict(counts), deliveries, cursors


NOW = at(2026, 6, 8, 9, 5)  # a Monday


def test_sql_and_python_plan_the_same_windows_cursors_and_message_ids(smtp_server, settings):
    settings.DIGEST_PLAN_CHUNK = 3  # several chunks
    world = World(smtp_server)
    other = world.newsletter.__class__.objects.create(
        name="Other", slug="other", send_time=datetime.time(18, 30), weekly_day=3, monthly_day=0
    )
    zones = ["UTC", "Europe/Paris", "Asia/Kolkata", "America/New_York", "Pacific/Chatham"]
    for n in range(30):
        subscription = world.subscribe(
            f"r{n}@example.com",
            frequency=["daily", "weekly", "immediate", "fortnightly", "monthly"][n % 5],
            tz=zones[(n // 5) % len(zones)],
            since=at(2026, 5, 20) if n % 2 else at(2026, 6, 7, 23),
            newsletter=other if n % 4 == 0 else None,
        )
        if n % 5 == 0:  # an earlier digest ended here
            Subscription.objects.filter(pk=subscription.pk).update(cursor=at(2026, 6, 6, 8, 0))
    world.publish("Issue a", at(2026, 6, 6, 12, 0))
    world.publish("Issue b", at(2026, 6, 8, 7, 0), newsletter=other)
    python, sql = outcome(deliveries_plan_python), outcome(deliveries_plan_sql)
    assert python[0]["planned"] and python[0]["empty"]  # the data covers both kinds
    assert sql == python


def test_sql_and_python_put_the_installation_id_in_the_message_id(smtp_server):
    world = World(smtp_server)
    for n in range(4):
        world.subscribe(f"r{n}@example.com", frequency="daily", since=at(2026, 5, 20))
    world.publish("Issue a", at(2026, 6, 7, 12, 0))
    seen = []
    for key in ("a1b2c3d4e5f6", "0f9e8d7c6b5a"):  # two databases that share one SECRET_KEY
        Installation.objects.update(key=key)
        python, sql = outcome(deliveries_plan_python), outcome(deliveries_plan_sql)
        assert sql[1:] == python[1:] and sql[0]["planned"] == python[0]["planned"]
        message_ids = [row[-1] for row in python[1]]
        assert len(message_ids) == 4 and all(f"<digest.{key}." in m for m in message_ids)
        seen.append(set(message_ids))
    assert not seen[0] & seen[1]
