"""`send_digests` given bad options: a clear CommandError, nothing changed."""

import io
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from digest.models import Delivery
from tests.digest.conftest import at
from tests.digest.test_processes import database_url
from tests.digest.test_workers import readers
from tests.smtp import free_port

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


def test_json_summary_for_scripts(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.subscribe("gone@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.replies["gone@example.com"] = "550 5.1.1 No such user"
    out, err = io.StringIO(), io.StringIO()
    call_command("send_digests", "--now=2026-06-02T08:05Z", "--json", stdout=out, stderr=err)
    summary = json.loads(out.getvalue())
    assert {key: summary[key] for key in ("due", "sent", "failed", "held", "dry_run")} == {
        "due": 2,
        "sent": 1,
        "failed": 1,
        "held": 0,
        "dry_run": False,
    }
    assert "delivered 2/2" in err.getvalue()  # progress still shows, on stderr
    assert "sending: 2/2 digests (100%)" in err.getvalue()  # with its rate, as a line: not a terminal


def test_send_digests_refuses_a_nul_in_the_newsletter_slug(world):
    with pytest.raises(CommandError, match="No newsletter"):
        call_command("send_digests", "--newsletter", "week\x00ly")


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_redis_for_the_task_queue_is_a_one_line_error(tmp_path):
    """TASKS_URL=rq:// with Redis down was a raw traceback from the enqueue."""
    readers(1)
    env = os.environ | {
        "DATABASE_URL": database_url(),
        "TASKS_URL": f"rq://127.0.0.1:{free_port()}/0",  # nothing listens there
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "send_digests", "--now", "2026-06-02T08:10:00+00:00"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert "TASKS_URL: cannot reach Redis to enqueue the send tasks" in result.stderr
