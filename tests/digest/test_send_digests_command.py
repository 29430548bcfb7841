"""`send_digests` given bad options: a clear CommandError, nothing changed."""

import pytest
from django.core.management import CommandError, call_command

from digest.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-13-45T00:00", "not a valid date-time: month must be in 1..12"),
        ("2026-01-01T00:00+25:00", "not a valid date-time"),
        ("", "not an ISO 8601 date-time"),
        ("x" * 5000, "'xxxxxxxxxx"),
        ("next tuesday", "not an ISO 8601 date-time"),
    ],
)
def test_a_bad_now_is_refused(value, expected):
    with pytest.raises(CommandError) as caught:
        call_command("send_digests", f"--now={value}")
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 200  # a huge value is cut, not echoed whole
    assert not Delivery.objects.exists()
