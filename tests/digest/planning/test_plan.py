"""Windows: a new subscription's first digest loses nothing, however many runs were missed."""

import datetime

import pytest
from django.db import transaction

from digest.models import Delivery, Installation
from digest.planning.due import subscriptions_schedule
from digest.planning.message_ids import installation_key, message_id_for
from digest.planning.plan import deliveries_plan_python
from tests.digest.conftest import at

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.mark.parametrize(
    ("frequency", "first_run"),
    [
        ("daily", at(2026, 6, 9, 8, 5)),
        ("weekly", at(2026, 6, 22, 8, 5)),
        ("fortnightly", at(2026, 6, 29, 8, 5)),  # Mondays 1, 15 and 29 June: the 15th was missed
        ("monthly", at(2026, 8, 1, 8, 5)),  # on the 1st: 1 July was missed
    ],
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
    # The window starts where the first would have had every run happened (one period
    # before the first send time: Monday 1 June 08:00), moved back to where its content
    # changes: with no issue before that, a second before the first issue.
    delivery = Delivery.objects.get()
    assert delivery.window_start == at(2026, 6, 1, 14, 59, 59)


def test_readers_who_subscribed_at_different_instants_share_one_window(world):
    # An import makes each reader at its own instant; after missed runs every one of them
    # must still fall into the same group (one rendering), whatever the frequency.
    world.publish("Issue before", at(2026, 6, 1, 6, 0))
    for n, since in enumerate([at(2026, 6, 1, 9, 0), at(2026, 6, 1, 9, 0, 0, 1), at(2026, 6, 1, 20, 30)]):
        for frequency in ("daily", "immediate"):
            world.subscribe(f"{frequency}{n}@example.com", frequency=frequency, since=since)
    world.publish("Issue after", at(2026, 6, 2, 12, 0))
    summary = world.run(at(2026, 6, 4, 8, 5))  # two send times missed
    assert summary.sent == 6
    assert summary.groups_rendered == 2  # one window per frequency's end, not one per reader
    # The issue before the send time that preceded them all belonged to that earlier digest.
    for n in range(3):
        assert world.titles(f"daily{n}@example.com") == world.titles(f"immediate{n}@example.com") == ["Issue after"]


@pytest.mark.parametrize("hour", range(24))
@pytest.mark.parametrize("frequency", ["daily", "weekly"])
def test_a_missed_first_run_loses_no_issue_at_any_hour_of_subscribing(world, frequency, hour):
    # An issue comes out; a reader subscribes at some hour of the same day, 30 minutes
    # after it; the scheduler is down at the first send time after that and back a period
    # later. Had the first run happened, its window (first send - period, first send]
    # would have carried the issue: the late run must too.
    subscribed = at(2026, 6, 8, hour, 30)
    published = subscribed - datetime.timedelta(minutes=30)
    world.publish("Issue before subscribing", published)
    world.subscribe("ada@example.com", frequency=frequency, since=subscribed)
    first_send = next(  # the newsletter sends at 08:00 UTC, weekly on Mondays (8 June is one)
        when
        for days in range(15)
        if (when := at(2026, 6, 8, 8, 0) + days * DAY) > subscribed and (frequency == "daily" or when.weekday() == 0)
    )
    period = DAY if frequency == "daily" else 7 * DAY
    world.run(first_send + period + datetime.timedelta(minutes=5))  # the first send time was missed
    if first_send - period < published:
        assert world.titles("ada@example.com") == ["Issue before subscribing"]
        # Moved back to a second before the only issue: where the content changes.
        assert Delivery.objects.get().window_start == published - datetime.timedelta(seconds=1)
    else:  # published exactly at the send time before subscribing: that earlier digest's issue
        assert world.titles("ada@example.com") == []


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


def test_reruns_send_nothing_twice_and_skip_nothing(world):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="immediate", since=at(2026, 6, 1))
    world.subscribe("cy@example.com", frequency="weekly", since=at(2026, 6, 1))
    clock = at(2026, 6, 1, 0, 0)
    for day in range(15):
        for hour in (6, 13):
            world.publish(f"Issue d{day}h{hour}", clock + day * DAY + datetime.timedelta(hours=hour))
    # Runs every 6 hours for 16 days, each run twice (a re-run right after).
    moment = clock
    while moment < clock + 16 * DAY:
        world.run(moment)
        world.run(moment)
        moment += datetime.timedelta(hours=6)
    expected = [f"Issue d{day}h{hour}" for day in range(15) for hour in (6, 13)]
    for email in ("ada@example.com", "bob@example.com"):
        assert world.titles(email) == expected, email
    # Weekly, Mondays 08:00: 1, 8 and 15 June 2026; only the issue of 15 June 13:00 is still to come.
    assert world.titles("cy@example.com") == expected[:-1]
    assert len(world.inbox("cy@example.com")) == 3


def test_missed_runs_are_caught_up_in_one_digest(world):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    # The server is off for two days; three issues appear meanwhile.
    world.publish("Issue b", at(2026, 6, 2, 12, 0))
    world.publish("Issue c", at(2026, 6, 3, 12, 0))
    world.publish("Issue d", at(2026, 6, 4, 7, 0))
    summary = world.run(at(2026, 6, 4, 10, 0))
    assert summary.sent == 1
    assert len(world.inbox("ada@example.com")) == 2
    assert world.titles("ada@example.com") == ["Issue a", "Issue b", "Issue c", "Issue d"]


def test_empty_window_sends_nothing_and_advances(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.due, summary.empty, summary.sent) == (1, 1, 0)
    subscription.refresh_from_db()
    assert subscription.cursor == at(2026, 6, 2, 8, 0)
    assert subscription.next_due_at == at(2026, 6, 3, 8, 0)
    assert not Delivery.objects.exists()
    assert world.smtp.received == []


def test_only_published_issues_whose_time_has_passed_count(world):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue draft", at(2026, 6, 1, 12, 0), status="draft")
    world.publish("Issue future", at(2026, 6, 2, 9, 0))
    world.publish("Issue now", at(2026, 6, 1, 13, 0))
    world.run(at(2026, 6, 2, 8, 5))
    assert world.titles("ada@example.com") == ["Issue now"]
    world.run(at(2026, 6, 3, 8, 5))
    assert world.titles("ada@example.com") == ["Issue now", "Issue future"]


def test_frequency_changes_never_repeat_or_drop_issues(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    expected = []
    moment = at(2026, 6, 1)
    for day in range(28):
        title = f"Issue {day}"
        world.publish(title, moment + day * DAY + datetime.timedelta(hours=10))
        expected.append(title)
    frequencies = {3: "weekly", 12: "immediate", 17: "daily", 20: "weekly", 25: "immediate"}
    for hour in range(0, 30 * 24, 6):
        now = moment + datetime.timedelta(hours=hour)
        if hour % 24 == 0 and hour // 24 in frequencies:
            subscription.refresh_from_db()
            subscription.frequency = frequencies[hour // 24]
            subscription.next_due_at = None
            subscription.save()
        world.run(now)
    assert world.titles("ada@example.com") == expected


def test_confirming_a_subscription_pending_since_an_import_starts_it_then(world):
    from newsletters.models import Subscriber, Subscription
    from newsletters.services import subscription_confirm
    from newsletters.tokens import token_make

    pending = world.subscribe("ada@example.com", since=at(2026, 5, 1))
    Subscriber.objects.filter(pk=pending.subscriber_id).update(status="pending", confirmed_at=None)
    Subscription.objects.filter(pk=pending.pk).update(status="pending")
    world.publish("Issue in May", at(2026, 5, 10, 12, 0))
    world.publish("Issue of yesterday", at(2026, 6, 1, 12, 0))
    confirmed_at = at(2026, 6, 2, 7, 0)
    request = {"e": "ada@example.com", "n": "Ada", "tz": "UTC", "c": {str(world.newsletter.pk): "daily"}}
    token = token_make(purpose="confirm", value=request | {"iat": int(confirmed_at.timestamp()) - 60})
    subscription_confirm(token=token, now=confirmed_at)
    world.run(at(2026, 6, 2, 8, 5))
    # One period back from confirming, like any new reader; not the whole month since the import.
    assert world.titles("ada@example.com") == ["Issue of yesterday"]


def test_two_installations_sharing_a_secret_key_mint_different_message_ids(world):
    # Staging restored from production's backup keeps SECRET_KEY and the subscription ids; a
    # new database (simulated: another stored installation id) must still mint its own ids.
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1, 9, 0))
    world.publish("Issue", at(2026, 6, 1, 15, 0))
    ids = []
    for key in ("a1b2c3d4e5f6", "0f9e8d7c6b5a"):
        Installation.objects.update(key=key)
        with transaction.atomic():
            subscriptions_schedule(now=at(2026, 6, 2, 8, 5))
            deliveries_plan_python(now=at(2026, 6, 2, 8, 5))
            delivery = Delivery.objects.get()
            transaction.set_rollback(True)
        assert delivery.message_id == message_id_for(delivery.subscription_id, delivery.window_end, installation=key)
        assert f".{key}." in delivery.message_id
        ids.append(delivery.message_id)
    assert ids[0] != ids[1]


def test_the_installation_id_is_made_by_the_migration_and_read_unchanged():
    made = Installation.objects.get()
    assert len(made.key) == 12 and installation_key() == installation_key() == made.key
