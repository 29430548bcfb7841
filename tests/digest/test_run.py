"""A run as a whole: dry runs and the summary."""

import datetime

import pytest

from digest.models import Delivery
from tests.digest.conftest import at

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def test_dry_run_changes_nothing(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    summary = world.run(at(2026, 6, 2, 8, 5), dry_run=True)
    assert (summary.due, summary.planned, summary.groups_rendered) == (1, 1, 1)
    assert "nothing was changed" in str(summary)
    subscription.refresh_from_db()
    assert (subscription.cursor, subscription.next_due_at) == (None, None)
    assert not Delivery.objects.exists() and world.smtp.received == []
    assert world.run(at(2026, 6, 2, 8, 5)).sent == 1
