"""Leases: the local deadline, the heartbeat, taking expired claims over on the database's clock, graceful stops."""

import datetime
import os
import signal
import threading

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from digest.models import Delivery, DeliveryStatus, JournalEntry
from digest.sending.lease import MARGIN, Lease, LeaseLost, stop_on_signals, stop_requested
from digest.sending.ledger import deliveries_recover, leases_renew
from project.clock import db_now
from tests.digest.conftest import at, leases_expire

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_is_valid_until_its_deadline_less_the_margin():
    clock = Clock()
    lease = Lease(claimant="a", timeout=60, clock=clock)
    lease.stamped(clock())
    clock.now += 60 * (1 - MARGIN) - 0.01
    lease.check()
    clock.now += 0.02
    with pytest.raises(LeaseLost, match="ran out"):
        lease.check()
    lease.stamped(clock())  # renewed
    assert lease.valid()


def test_a_heartbeat_that_finds_rows_taken_over_loses_the_lease():
    lease = Lease(claimant="a", timeout=0.2)
    lease.stamped(lease.stamping())
    beats = threading.Event()

    def renew():
        beats.set()
        return 1  # of 3 held: two were taken over

    with lease.heartbeat(renew, holding=3):
        assert beats.wait(5)
        while not lease.lost:  # the beat records it right after renew returns
            pass
    assert "2 of 3" in lease.lost
    with pytest.raises(LeaseLost, match="taken over"):
        lease.check()


def test_a_heartbeat_whose_renewal_fails_keeps_the_deadline_it_had():
    clock = Clock()
    lease = Lease(claimant="a", timeout=0.2, clock=clock)
    lease.stamped(clock())
    failed = threading.Event()

    def renew():
        failed.set()
        raise OperationalError("the connection is lost")

    with lease.heartbeat(renew, holding=1):
        assert failed.wait(5)
    assert not lease.lost and lease.valid()
    clock.now += 1
    assert not lease.valid()  # the database's stamp was never renewed: it stops by itself


def claim(world, count: int, *, claimant: str, limit: int = 100) -> list[int]:
    """Plan `count` digests and claim up to `limit` of them for `claimant`, stamped with the database's time."""
    from digest.planning.due import subscriptions_schedule
    from digest.planning.plan import deliveries_plan
    from digest.sending.ledger import deliveries_claim

    for n in range(count):
        world.subscribe(f"r{n}@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    subscriptions_schedule(now=at(2026, 6, 2, 8, 5))
    deliveries_plan(now=at(2026, 6, 2, 8, 5))
    batch = deliveries_claim(now=at(2026, 6, 2, 8, 5), claimant=claimant, limit=limit, stamp=db_now())
    return sorted(delivery.id for delivery in batch)


def test_a_dead_senders_claims_are_taken_over_journal_first_and_counted_once(world):
    ids = claim(world, 5, claimant="dead")
    JournalEntry.objects.bulk_create(JournalEntry(claimant="dead", delivery_id=i) for i in ids[:3])
    assert deliveries_recover(now=at(2026, 6, 2, 8, 10)) == (0, set())  # its lease is alive
    leases_expire()
    assert deliveries_recover(now=at(2026, 6, 2, 8, 10)) == (3, {"dead"})
    assert deliveries_recover(now=at(2026, 6, 2, 8, 10)) == (0, set())  # a second sender counts nothing again
    statuses = dict(Delivery.objects.values_list("id", "status"))
    assert [statuses[i] for i in ids] == ["sent"] * 3 + ["pending"] * 2
    # The two whose fate is unknown keep the attempt their claim counted, and are claimable.
    assert set(Delivery.objects.filter(id__in=ids[3:]).values_list("attempts", "claimed_by")) == {(1, "")}
    assert not JournalEntry.objects.exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="on SQLite the database's clock is this machine's: nothing to skew"
)
def test_a_run_whose_clock_is_far_ahead_takes_over_no_live_claim(world, monkeypatch):
    claim(world, 3, claimant="live")
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(hours=3))
    # The run's `now` and this machine's clock are both hours ahead; the database's is not.
    assert deliveries_recover(now=at(2026, 6, 2, 11, 5)) == (0, set())
    assert Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_by="live").count() == 3


def test_renewing_stamps_the_claims_again_and_counts_what_is_held(world):
    ids = claim(world, 4, claimant="me")
    leases_expire()
    assert leases_renew(claimant="me", connection=connection) == 4
    assert deliveries_recover(now=at(2026, 6, 2, 8, 10)) == (0, set())  # renewed: alive again
    Delivery.objects.filter(id=ids[0]).update(claimed_by="another")
    assert leases_renew(claimant="me", connection=connection) == 3


def test_a_first_signal_asks_for_a_graceful_stop_and_a_second_reaches_the_old_handler():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop_requested.is_set()
            assert seen == [signal.SIGTERM]  # a worker's own handler still hears of it
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == [signal.SIGTERM] * 2
        assert not stop_requested.is_set()
        assert signal.getsignal(signal.SIGTERM) is not None
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_claim_takes_at_most_its_limit(world):
    # As one UPDATE … WHERE id IN (SELECT … LIMIT 5 FOR UPDATE SKIP LOCKED), PostgreSQL claimed all 12.
    assert len(claim(world, 12, claimant="me", limit=5)) == 5
    assert Delivery.objects.filter(status=DeliveryStatus.SENDING).count() == 5


def test_a_take_over_keeps_the_journal_marks_of_the_rows_it_did_not_take(world):
    # On PostgreSQL SKIP LOCKED may pass some of a claimant's rows (another sender holds them,
    # or its own late renewal); their marks are all that proves those messages were accepted.
    ids = claim(world, 4, claimant="slow")
    JournalEntry.objects.bulk_create(JournalEntry(claimant="slow", delivery_id=i) for i in ids)
    leases_expire()
    Delivery.objects.filter(id__in=ids[2:]).update(claimed_at=db_now())  # not taken: still within the lease
    assert deliveries_recover(now=at(2026, 6, 2, 8, 10)) == (2, {"slow"})
    assert set(JournalEntry.objects.values_list("delivery_id", flat=True)) == set(ids[2:])
