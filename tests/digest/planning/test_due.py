"""Scheduling through runs: one digest per local morning across DST; unknown zones fall back to UTC."""

import datetime

import pytest

from digest.models import Delivery
from newsletters.models import Subscriber, Subscription
from newsletters.schedules import _zone
from newsletters.tokens import preferences_url
from tests.digest.conftest import at

DAY = datetime.timedelta(days=1)


@pytest.fixture
def lost(world):
    """A reader with a zone saved on a host whose tzdata had it (bypassing validation)."""
    _zone.cache_clear()  # the warning is logged once per zone and process
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(timezone="Mars/Olympus_Mons")
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    return subscription


def test_an_unknown_time_zone_falls_back_to_utc(world, lost, caplog):
    dry = world.run(at(2026, 6, 2, 8, 5), dry_run=True)
    assert dry.planned == 2
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 2
    assert world.titles("ada@example.com") == ["Issue a"]
    assert "Mars/Olympus_Mons" in caplog.text


def test_the_preferences_page_of_such_a_reader_works(client, world, lost):
    response = client.get(preferences_url(lost.subscriber_id))
    assert response.status_code == 200


def test_dst_change_keeps_one_digest_per_local_morning(world):
    world.subscribe("paris@example.com", frequency="daily", tz="Europe/Paris", since=at(2026, 3, 26))
    moment = at(2026, 3, 26, 0, 5)
    for day in range(6):
        world.publish(f"Issue {day}", at(2026, 3, 26, 12, 0) + day * DAY)
    while moment < at(2026, 4, 1):
        world.run(moment)
        moment += datetime.timedelta(hours=1)
    received = world.inbox("paris@example.com")
    # 27, 28 March at 08:00 CET (07:00 UTC); from 29 March at 08:00 CEST (06:00 UTC).
    assert [m["Subject"] for m in received] == [f"Issue {n}" for n in range(5)]
    windows = list(Delivery.objects.order_by("window_end").values_list("window_end", flat=True))
    assert windows == [
        at(2026, 3, 27, 7),
        at(2026, 3, 28, 7),
        at(2026, 3, 29, 6),
        at(2026, 3, 30, 6),
        at(2026, 3, 31, 6),
    ]


def _preferences(client, subscription, **statuses):
    from newsletters.tokens import preferences_url

    url = preferences_url(subscription.subscriber_id).removeprefix("http://localhost:8000")
    data = {"name": "Ada", "timezone": "UTC", f"freq_{subscription.pk}": "daily"}
    return client.post(url, data | {f"status_{subscription.pk}": statuses["status"]} if statuses else data)


def test_turning_a_newsletter_back_on_after_unsubscribing_from_everything_sends_again(client, world):
    from django.utils import timezone

    from newsletters.tokens import preferences_url

    now = timezone.now()  # the preferences page acts at the real time, so the runs follow it
    subscription = world.subscribe("ada@example.com", since=now - 3 * DAY)
    url = preferences_url(subscription.subscriber_id).removeprefix("http://localhost:8000")
    client.post(url, {"unsubscribe_all": "1"})
    world.publish("Issue a", now - DAY)
    assert world.run(now).due == 0
    page = client.get(url).content.decode()
    assert "unsubscribed from everything" in page and "next on" not in page
    response = _preferences(client, subscription, status="active")
    assert "Saved." in response.content.decode() and "next on" in response.content.decode()
    world.publish("Issue b", now + datetime.timedelta(hours=1))
    assert world.run(now + 2 * DAY).sent == 1
    assert world.titles("ada@example.com") == ["Issue b"]  # from when they came back, not before


def test_a_suppressed_reader_is_told_what_to_do_and_not_reactivated(client, world):
    subscription = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(status="suppressed")
    response = _preferences(client, subscription, status="active")
    page = response.content.decode()
    assert "could not be delivered" in page and "subscribe again" in page and "next on" not in page
    assert Subscriber.objects.get().status == "suppressed"
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    assert world.run(at(2026, 6, 2, 8, 5)).due == 0


def test_unsubscribing_from_everything_does_not_undo_a_suppression(client, world):
    from newsletters.tokens import preferences_url

    subscription = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(status="suppressed")
    url = preferences_url(subscription.subscriber_id).removeprefix("http://localhost:8000")
    client.post(url, {"unsubscribe_all": "1"})
    _preferences(client, subscription, status="active")  # would have made them "active" again
    assert Subscriber.objects.get().status == "suppressed"


def test_a_suppressed_reader_who_confirms_again_starts_from_then(world):
    from newsletters.services import subscription_confirm
    from newsletters.tokens import token_make

    subscription = world.subscribe("ada@example.com", since=at(2026, 5, 1))
    Subscription.objects.filter(pk=subscription.pk).update(cursor=at(2026, 5, 2, 8))
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(status="suppressed", confirmed_at=at(2026, 5, 1))
    world.publish("Issue while bouncing", at(2026, 5, 20, 12, 0))
    world.publish("Issue after coming back", at(2026, 6, 2, 12, 0))
    back = at(2026, 6, 2, 9, 0)
    request = {"e": "ada@example.com", "n": "Ada", "tz": "UTC", "c": {str(world.newsletter.pk): "daily"}}
    subscription_confirm(token=token_make(purpose="confirm", value=request | {"iat": int(back.timestamp())}), now=back)
    world.run(at(2026, 6, 3, 8, 5))
    assert world.titles("ada@example.com") == ["Issue after coming back"]
