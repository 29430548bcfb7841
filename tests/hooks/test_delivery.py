"""Delivery: retries with backoff, pause and owner mail, leases, kills, order, replay, and what is refused.

Time is driven by passing `now`; the receiver is a real HTTP server on loopback.
"""

import datetime
import socket
import ssl

import pytest

from hooks.delivery import endpoint_deliver, endpoints_resume, events_replay, retry_delay
from hooks.exceptions import PostFailed
from hooks.http import endpoint_post
from hooks.models import Attempt, Endpoint, Event, EventStatus, EventType
from hooks.outbox import events_record
from tests.hooks.conftest import T0, endpoint_make
from tests.hooks.receiver import Receiver
from tests.httpsserver import certificates_make

pytestmark = pytest.mark.django_db


def record(count: int, *, key: str = "subscriber:1", start: int = 0) -> list[Event]:
    events = []
    for n in range(start, start + count):
        events += events_record(
            type=EventType.SUBSCRIPTION_CHANGED, data={"n": n}, key=key, now=T0, newsletter_ids=None
        )
    return events


def minutes(n: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=n)


def test_a_failing_receiver_is_retried_with_doubling_waits_and_gets_everything_in_order(receiver, settings):
    settings.HOOKS_RETRY_BACKOFF, settings.HOOKS_RETRY_MAX = 30, 3600
    receiver.fail_first = 3
    endpoint = endpoint_make(url=receiver.url)
    events = record(3)

    counts = endpoint_deliver(endpoint_id=endpoint.pk, now=T0)
    assert (counts.delivered, counts.failed) == (0, 1)  # the queue stops at the first failure
    waits = []
    for _ in range(3):
        endpoint.refresh_from_db()
        previous = endpoint.attempt_at if waits else T0
        waits.append(round((endpoint.retry_at - previous).total_seconds()))
        early = endpoint_deliver(endpoint_id=endpoint.pk, now=endpoint.retry_at - datetime.timedelta(seconds=1))
        assert early.failed == early.delivered == 0  # backing off: no request
        endpoint.attempt_at = endpoint.retry_at
        counts = endpoint_deliver(endpoint_id=endpoint.pk, now=endpoint.retry_at)
    assert waits == [30, 60, 120]
    assert len(receiver.requests) == 6
    assert counts.delivered == 3
    assert receiver.processed == [event.webhook_id for event in events]
    assert [r.payload["data"]["n"] for r in receiver.requests if r.status == 204] == [0, 1, 2]
    first = Event.objects.get(pk=events[0].pk)
    assert (first.status, first.attempts) == (EventStatus.DELIVERED, 4)
    assert list(first.attempt_log.order_by("at").values_list("status_code", "response")) == [
        (500, "down for maintenance")
    ] * 3 + [(204, "")]
    endpoint.refresh_from_db()
    assert (endpoint.failures, endpoint.failing_since, endpoint.retry_at) == (0, None, None)


def test_waits_double_up_to_the_maximum(settings):
    settings.HOOKS_RETRY_BACKOFF, settings.HOOKS_RETRY_MAX = 30, 3600
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 8, 50)] == [30, 60, 120, 3600, 3600]


def test_an_endpoint_failing_for_a_day_is_paused_and_its_owner_and_admins_told(receiver, settings, smtp_server):
    settings.ADMINS = ["ops@example.com"]
    settings.HOOKS_PAUSE_AFTER_HOURS = 24
    receiver.answer = lambda number, path: (503, {}, b"")
    endpoint = endpoint_make(url=receiver.url, owner_email="crm-team@example.com")
    record(2)
    endpoint_deliver(endpoint_id=endpoint.pk, now=T0)
    endpoint_deliver(endpoint_id=endpoint.pk, now=T0 + datetime.timedelta(hours=23))
    assert not Endpoint.objects.get(pk=endpoint.pk).paused_at and not smtp_server.received
    counts = endpoint_deliver(endpoint_id=endpoint.pk, now=T0 + datetime.timedelta(hours=24.1))
    assert counts.paused

    endpoint.refresh_from_db()
    assert endpoint.paused_at - T0 >= datetime.timedelta(hours=24.1)
    assert "failing for 24.1 hours, 3 attempts in a row; last: HTTP 503" in endpoint.pause_reason
    recipients = sorted(r for message in smtp_server.received for r in message.recipients)
    assert recipients == ["crm-team@example.com", "ops@example.com"]
    text = smtp_server.received[0].message.get_body(("plain",)).get_content()
    assert receiver.url in text and "2 events wait for it and are kept" in text
    # Paused: nothing more is tried, however late; the events wait.
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0 + datetime.timedelta(days=9)).failed == 0
    assert len(receiver.requests) == 3
    receiver.answer = None
    endpoints_resume(endpoint_ids=[endpoint.pk])
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0 + datetime.timedelta(days=9)).delivered == 2
    assert len(smtp_server.received) == 2  # told once


def test_a_worker_killed_between_the_answer_and_the_mark_leaves_the_event_to_the_next(receiver):
    endpoint = endpoint_make(url=receiver.url)
    events = record(3)
    sent = []

    def killed_after_second(url, **arguments):
        answer = endpoint_post(url, **arguments)
        sent.append(answer)
        if len(sent) == 2:
            raise SystemExit("worker killed")  # after the receiver's 2xx, before the mark
        return answer

    with pytest.raises(SystemExit):
        endpoint_deliver(endpoint_id=endpoint.pk, now=T0, post=killed_after_second)
    assert list(Event.objects.order_by("id").values_list("status", flat=True)) == ["delivered", "pending", "pending"]

    endpoint_deliver(endpoint_id=endpoint.pk, now=T0)
    ids = [event.webhook_id for event in events]
    assert receiver.ids() == [ids[0], ids[1], ids[1], ids[2]]  # the one in flight again, same id
    assert receiver.processed == ids  # deduped by webhook-id: each exactly once, in order
    assert not Event.objects.filter(status=EventStatus.PENDING).exists()


def test_a_dead_workers_lease_is_taken_over_only_once_it_has_passed(receiver, settings):
    settings.HOOKS_LEASE_SECONDS = 300
    endpoint = endpoint_make(url=receiver.url)
    record(2)
    # What a worker killed with SIGKILL mid-delivery leaves behind: its claim.
    Endpoint.objects.filter(pk=endpoint.pk).update(claimed_by="dead", claimed_until=minutes(5))
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=minutes(4.9)).delivered == 0
    assert not receiver.requests
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=minutes(5)).delivered == 2
    endpoint.refresh_from_db()
    assert (endpoint.claimed_by, endpoint.claimed_until) == ("", None)


def test_each_subscribers_events_arrive_in_order_through_failures(receiver):
    # Every fourth request fails: the endpoint backs off, and no later event overtakes an earlier one.
    receiver.answer = lambda number, path: (500, {}, b"") if number % 4 == 3 else None
    endpoint = endpoint_make(url=receiver.url)
    for n in range(30):
        record(1, key=f"subscriber:{n % 3}", start=n)
    now = T0
    while Event.objects.filter(status=EventStatus.PENDING).exists():
        endpoint_deliver(endpoint_id=endpoint.pk, now=now)
        now = Endpoint.objects.get(pk=endpoint.pk).retry_at or now
    arrived = [r.payload["data"]["n"] for r in receiver.requests if r.status == 204]
    assert arrived == list(range(30))
    for subscriber in range(3):
        mine = [n for n in arrived if n % 3 == subscriber]
        assert mine == sorted(mine)


def test_replay_sends_a_delivered_event_again_with_the_same_id_and_body(receiver):
    endpoint = endpoint_make(url=receiver.url)
    [event] = record(1)
    endpoint_deliver(endpoint_id=endpoint.pk, now=T0)
    assert events_replay(event_ids=[event.pk]) == [endpoint.pk]
    assert Event.objects.get(pk=event.pk).status == EventStatus.PENDING
    endpoint_deliver(endpoint_id=endpoint.pk, now=minutes(10))
    first, again = receiver.requests
    assert (again.webhook_id, again.body) == (first.webhook_id, first.body)
    assert again.headers["webhook-signature"] != first.headers["webhook-signature"]  # a new timestamp
    assert Event.objects.get(pk=event.pk).attempts == 2


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver):
    receiver.answer = lambda number, path: (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    endpoint = endpoint_make(url=receiver.url)
    record(1)
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0).failed == 1
    assert len(receiver.requests) == 1
    assert Attempt.objects.get().status_code == 302
    assert Event.objects.get().status == EventStatus.PENDING


def test_an_endless_answer_is_read_only_up_to_the_cap(receiver, settings):
    settings.HOOKS_MAX_RESPONSE_BYTES = 10_000
    settings.HOOKS_TIMEOUT = 5
    # A Content-Length far beyond what is sent: reading it all would wait for the timeout.
    receiver.answer = lambda number, path: (200, {"Content-Length": str(10**9)}, b"x" * 20_000)
    endpoint = endpoint_make(url=receiver.url)
    record(1)
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0).delivered == 1
    attempt = Attempt.objects.get()
    assert attempt.status_code == 200 and attempt.response == "x" * 1000
    assert attempt.milliseconds < 4000


def test_a_receiver_that_never_answers_times_out(settings):
    settings.HOOKS_TIMEOUT = 0.3
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(PostFailed, match="timed out"):
            endpoint_post(url, body=b"{}", headers={})
        endpoint = endpoint_make(url=url)
        record(1)
        assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0).failed == 1
    assert "timed out" in Attempt.objects.get().error


def test_private_addresses_are_refused_at_delivery_without_a_request(receiver, settings):
    endpoint = endpoint_make(url=receiver.url)
    record(1)
    settings.HOOKS_ALLOW_PRIVATE = 0
    assert endpoint_deliver(endpoint_id=endpoint.pk, now=T0).failed == 1
    assert not receiver.requests
    assert "non-public address" in Attempt.objects.get().error
    assert Event.objects.get().status == EventStatus.PENDING


def test_https_goes_to_the_checked_address_and_still_verifies_the_certificate(tmp_path):
    paths = certificates_make(tmp_path)
    with Receiver(tls=paths) as secure:
        trusting = ssl.create_default_context(cafile=str(paths["ca"]))
        answer = endpoint_post(secure.url, body=b"{}", headers={"webhook-id": "msg_1"}, context=trusting)
        assert answer.status == 204 and secure.requests[0].headers["host"].startswith("localhost:")
        with pytest.raises(PostFailed, match="CERTIFICATE_VERIFY_FAILED"):
            endpoint_post(secure.url, body=b"{}", headers={"webhook-id": "msg_2"})  # the system's CAs only
        # Another name of this machine, not in the certificate: refused although the CA is trusted.
        other = socket.gethostname()
        if other != "localhost" and "127.0.0.1" in {info[4][0] for info in socket.getaddrinfo(other, 443)}:
            with pytest.raises(PostFailed, match="CERTIFICATE_VERIFY_FAILED"):
                url = secure.url.replace("localhost", other)
                endpoint_post(url, body=b"{}", headers={"webhook-id": "msg_3"}, context=trusting)
    assert len(secure.requests) == 1
