"""Real workers: two at once never send the same endpoint's events; one killed (SIGKILL) mid-request loses nothing."""

import datetime
import os
import subprocess
import sys
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from hooks.delivery import endpoint_deliver
from hooks.models import Event, EventStatus, EventType
from hooks.outbox import events_record
from tests.digest.test_processes import database_url
from tests.hooks.conftest import T0, endpoint_make

pytestmark = pytest.mark.django_db(transaction=True)


def record(count: int) -> list[Event]:
    return [
        event
        for n in range(count)
        for event in events_record(
            type=EventType.COMPLAINT, data={"n": n}, key="subscriber:1", now=T0, newsletter_ids=None
        )
    ]


def held_second_answer(receiver):
    """Make the receiver hold its answer to the second request until `release` is set."""
    arrived, release = threading.Event(), threading.Event()

    def answer(number, path):
        if number == 1:
            arrived.set()
            release.wait(60)
        return None

    receiver.answer = answer
    return arrived, release


def test_a_second_worker_finds_the_endpoint_claimed_and_sends_nothing(receiver):
    endpoint = endpoint_make(url=receiver.url)
    events = record(3)
    arrived, release = held_second_answer(receiver)
    results = []

    def first_worker():
        try:
            results.append(endpoint_deliver(endpoint_id=endpoint.pk, now=T0))
        finally:
            connection.close()

    worker = threading.Thread(target=first_worker)
    worker.start()
    try:
        assert arrived.wait(30)  # the first worker is mid-request
        assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0).delivered == 0
        assert receiver.arrivals == 2  # nothing more arrived: the second worker sent nothing
    finally:
        release.set()
        worker.join(30)
    assert results[0].delivered == 3
    assert receiver.ids() == [event.webhook_id for event in events]  # each once


def test_a_worker_killed_mid_request_leaves_the_event_to_the_next_one_after_its_lease(receiver, tmp_path, settings):
    settings.HOOKS_LEASE_SECONDS = 300
    endpoint = endpoint_make(url=receiver.url)
    events = record(3)
    arrived, release = held_second_answer(receiver)
    env = os.environ | {
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": database_url(),
        "HOOKS_ALLOW_PRIVATE": "1",
        "HOOKS_LEASE_SECONDS": "300",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "deliver_webhooks", "--now", T0.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert arrived.wait(60), worker.communicate(timeout=5)
        worker.kill()  # SIGKILL: no finally, no clean-up, its claim stays
        worker.wait(30)
    finally:
        release.set()
    assert list(Event.objects.order_by("id").values_list("status", flat=True)) == ["delivered", "pending", "pending"]

    in_lease = T0 + datetime.timedelta(seconds=299)
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=in_lease).delivered == 0  # the dead worker's claim
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0 + datetime.timedelta(seconds=300)).delivered == 2
    ids = [event.webhook_id for event in events]
    assert receiver.ids() == [ids[0], ids[1], ids[1], ids[2]]  # the one in flight again, under its id
    assert receiver.processed == ids
    assert not Event.objects.filter(status=EventStatus.PENDING).exists()


def test_the_command_delivers_what_is_due_and_refuses_a_bad_time(receiver, capsys):
    endpoint_make(url=receiver.url)
    record(2)
    call_command("deliver_webhooks", "--now", T0.isoformat())
    assert capsys.readouterr().out.strip() == "2 delivered, 0 failed, 0 endpoints paused"
    with pytest.raises(CommandError, match="--now"):
        call_command("deliver_webhooks", "--now", "yesterday-ish")
