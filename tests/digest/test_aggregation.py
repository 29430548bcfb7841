"""Windows: a new subscription's first digest loses nothing, however many runs were missed."""

import datetime

import pytest

from digest.models import Delivery
from tests.digest.conftest import at


@pytest.mark.parametrize(
    ("frequency", "first_run"), [("daily", at(2026, 6, 9, 8, 5)), ("weekly", at(2026, 6, 22, 8, 5))]
)
def test_missed_runs_do_not_lose_issues_published_after_subscribing(world, frequency, first_run):
    # The reader confirms on Monday 1 June at 09:00; the issue comes out that afternoon; then
    # cron is broken for a week (or two), so the first run is long after the first send time.
    world.subscribe("ada@example.com", frequency=frequency, since=at(2026, 6, 1, 9, 0))
    world.publish("Issue early", at(2026, 6, 1, 15, 0))
    world.publish("Issue late", first_run - datetime.timedelta(days=1, hours=2))
    summary = world.run(first_run)
    assert summary.sent == 1
    assert world.titles("ada@example.com") == ["Issue early", "Issue late"]
    delivery = Delivery.objects.get()
    assert delivery.window_start == at(2026, 6, 1, 9, 0)


def test_a_new_subscription_still_reaches_one_period_back(world):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 2, 7, 0))
    world.publish("Issue yesterday", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    assert world.titles("ada@example.com") == ["Issue yesterday"]


def test_an_immediate_reader_after_missed_runs_gets_everything_since_subscribing(world):
    world.subscribe("ada@example.com", frequency="immediate", since=at(2026, 6, 1, 9, 0))
    for day in (1, 3, 5):
        world.publish(f"Issue {day}", at(2026, 6, day, 12, 0))
    world.run(at(2026, 6, 6, 9, 0))
    assert world.titles("ada@example.com") == ["Issue 1", "Issue 3", "Issue 5"]
