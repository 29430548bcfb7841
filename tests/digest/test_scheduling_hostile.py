"""A reader whose time zone this host does not know is scheduled in UTC; nobody else is affected."""

import pytest
from django.core.management import CommandError, call_command

from newsletters.models import Subscriber
from newsletters.schedules import _zone
from newsletters.tokens import preferences_url
from tests.digest.conftest import at


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


def test_send_digests_refuses_a_nul_in_the_newsletter_slug(world):
    with pytest.raises(CommandError, match="No newsletter"):
        call_command("send_digests", "--newsletter", "week\x00ly")
