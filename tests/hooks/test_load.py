"""A modest load: 2,000 events, a receiver that fails at first, a worker killed twice: all arrive, once each, in order."""

import pytest

from hooks.delivery import endpoint_deliver
from hooks.http import endpoint_post
from hooks.models import Endpoint, Event, EventStatus, EventType
from hooks.outbox import events_record
from tests.hooks.conftest import T0, endpoint_make

pytestmark = pytest.mark.django_db

EVENTS = 2000
READERS = 40


def test_two_thousand_events_through_failures_and_two_kills_arrive_exactly_once_in_order(receiver):
    receiver.fail_first = 25  # down at first: 25 attempts, backing off each time
    endpoint = endpoint_make(url=receiver.url)
    for n in range(EVENTS):
        events_record(
            type=EventType.SUBSCRIPTION_CHANGED,
            data={"n": n, "reader": n % READERS},
            key=f"subscriber:{n % READERS}",
            now=T0,
            newsletter_ids=None,
        )
    kill_at = {700, 1500}  # the 700th and 1,500th accepted requests: the worker dies before marking them
    accepted = 0

    def killable(url, **arguments):
        nonlocal accepted
        answer = endpoint_post(url, **arguments)
        if answer.ok:
            accepted += 1
            if accepted in kill_at:
                raise SystemExit("worker killed")
        return answer

    now, runs = T0, 0
    while Event.objects.filter(status=EventStatus.PENDING).exists():
        runs += 1
        assert runs < 100, "delivery makes no progress"
        try:
            endpoint_deliver(endpoint_id=endpoint.pk, now=now, post=killable)
        except SystemExit:
            continue
        now = Endpoint.objects.get(pk=endpoint.pk).retry_at or now

    expected = list(Event.objects.order_by("id").values_list("webhook_id", flat=True))
    assert receiver.processed == expected  # every event, in order, once after deduping by webhook-id
    delivered = receiver.ids()
    assert len(delivered) == EVENTS + 2  # only the two in flight at the kills were sent twice
    for reader in range(READERS):
        mine = [
            r.payload["data"]["n"]
            for r in receiver.requests
            if r.status == 204 and r.payload["data"]["reader"] == reader
        ]
        assert mine == sorted(mine)
    assert len(receiver.requests) == EVENTS + 2 + 25
