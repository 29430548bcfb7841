"""The policy: hard bounces suppress, soft bounces score and decay, complaints unsubscribe, editors lift."""

import datetime

import pytest

from digest.bounces import (
    Report,
    bounce_rates,
    bounce_raw_prune,
    bounce_record,
    fingerprint_of,
    soft_score,
    suppression_lift,
)
from digest.models import BounceEvent, BounceKind
from newsletters.models import Subscriber, SubscriberStatus, SubscriptionStatus
from tests.digest.conftest import at
from tests.digest.returns import sent_delivery

pytestmark = pytest.mark.django_db
DAY = datetime.timedelta(days=1)
START = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.UTC)


def _report(kind, when, tag="") -> Report:
    return Report(kind=kind, source="test", occurred_at=when, fingerprint=fingerprint_of(kind, when, tag))


def _status(subscriber) -> str:
    return Subscriber.objects.get(pk=subscriber.pk).status


def test_a_hard_bounce_suppresses_at_once():
    subscriber = sent_delivery().subscription.subscriber
    event = bounce_record(report=_report(BounceKind.HARD, START), subscriber=subscriber, now=START)
    assert event.action == "suppressed" and _status(subscriber) == SubscriberStatus.SUPPRESSED


def test_soft_bounces_suppress_past_the_threshold_counting_days_not_messages(settings):
    settings.DIGEST_BOUNCE_SOFT_THRESHOLD = 3
    subscriber = sent_delivery().subscription.subscriber
    for hour in range(5):  # five on one day count as one
        when = START + datetime.timedelta(hours=hour)
        bounce_record(report=_report(BounceKind.SOFT, when), subscriber=subscriber, now=when)
    assert soft_score(subscriber=subscriber, now=START + DAY) == 1
    bounce_record(report=_report(BounceKind.SOFT, START + DAY), subscriber=subscriber, now=START + DAY)
    assert _status(subscriber) == SubscriberStatus.ACTIVE
    third = bounce_record(report=_report(BounceKind.SOFT, START + 2 * DAY), subscriber=subscriber, now=START + 2 * DAY)
    assert (third.score, third.action) == (3, "suppressed")
    assert _status(subscriber) == SubscriberStatus.SUPPRESSED


def test_soft_bounces_decay(settings):
    settings.DIGEST_BOUNCE_SOFT_THRESHOLD = 3
    settings.DIGEST_BOUNCE_DECAY_DAYS = 7
    subscriber = sent_delivery().subscription.subscriber
    for when in (START, START + DAY, START + 10 * DAY):  # the first two are stale by the third
        event = bounce_record(report=_report(BounceKind.SOFT, when), subscriber=subscriber, now=when)
    assert event.score == 1 and event.action == "counted"
    assert _status(subscriber) == SubscriberStatus.ACTIVE


def test_a_complaint_unsubscribes_from_everything_and_says_why():
    delivery = sent_delivery()
    subscriber = delivery.subscription.subscriber
    report = Report(
        kind=BounceKind.COMPLAINT,
        source="postmark",
        occurred_at=START,
        fingerprint="x",
        diagnostic="marked as spam",
    )
    event = bounce_record(report=report, subscriber=subscriber, delivery=delivery, now=START)
    assert event.action == "unsubscribed" and event.diagnostic == "marked as spam"
    assert _status(subscriber) == SubscriberStatus.UNSUBSCRIBED
    assert not subscriber.subscriptions.exclude(status=SubscriptionStatus.UNSUBSCRIBED).exists()


def test_an_event_recorded_twice_counts_once():
    subscriber = sent_delivery().subscription.subscriber
    report = _report(BounceKind.SOFT, START)
    assert bounce_record(report=report, subscriber=subscriber, now=START)
    assert bounce_record(report=report, subscriber=subscriber, now=START) is None
    assert BounceEvent.objects.count() == 1


def test_an_editor_lifts_a_suppression_recorded_and_from_now_on(settings):
    settings.DIGEST_BOUNCE_SOFT_THRESHOLD = 2
    delivery = sent_delivery()
    subscriber = delivery.subscription.subscriber
    for when in (START, START + DAY):
        bounce_record(report=_report(BounceKind.SOFT, when), subscriber=subscriber, now=when)
    assert _status(subscriber) == SubscriberStatus.SUPPRESSED
    lifted_at = START + 2 * DAY
    assert suppression_lift(subscriber=subscriber, by="editor@example.com", now=lifted_at)
    assert not suppression_lift(subscriber=subscriber, by="editor@example.com", now=lifted_at)  # not suppressed now
    assert _status(subscriber) == SubscriberStatus.ACTIVE
    delivery.subscription.refresh_from_db()
    assert delivery.subscription.cursor == lifted_at  # nothing from the bounced days is sent
    lift = BounceEvent.objects.get(kind=BounceKind.LIFTED)
    assert lift.diagnostic == "lifted by editor@example.com"
    # The score starts again: one more soft bounce does not suppress at once.
    event = bounce_record(report=_report(BounceKind.SOFT, START + 3 * DAY), subscriber=subscriber, now=START + 3 * DAY)
    assert event.score == 1 and _status(subscriber) == SubscriberStatus.ACTIVE


def test_rates_warn_past_the_ses_thresholds(settings):
    deliveries = [sent_delivery(f"r{n}@example.com") for n in range(40)]
    now = deliveries[0].sent_at + DAY
    assert bounce_rates(now=now).warning() == ""
    for n, delivery in enumerate(deliveries[:3]):
        bounce_record(report=_report(BounceKind.HARD, now, n), subscriber=delivery.subscription.subscriber, now=now)
    rates = bounce_rates(now=now)
    assert (rates.sent, rates.hard, rates.complaints) == (40, 3, 0)
    assert "bounce rate 7.50% (3 hard bounces / 40 sent in 7 days) is above 5.00%" in rates.warning()
    assert "complaint" not in rates.warning()
    bounce_record(report=_report(BounceKind.COMPLAINT, now), subscriber=deliveries[5].subscription.subscriber, now=now)
    assert "complaint rate 2.50%" in bounce_rates(now=now).warning()


def test_a_run_warns_admins_when_the_bounce_rate_is_too_high(world, settings):
    settings.ADMINS = ["ops@example.com"]
    readers = [world.subscribe(f"r{n}@example.com", since=at(2026, 6, 1)) for n in range(10)]
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    first = world.run(at(2026, 6, 2, 8, 5))
    assert first.sent == 10 and first.warning == ""
    when = at(2026, 6, 2, 9, 0)
    bounce_record(report=_report(BounceKind.HARD, when), subscriber=readers[0].subscriber, now=when)
    world.publish("Issue b", at(2026, 6, 2, 12, 0))
    second = world.run(at(2026, 6, 3, 8, 5))
    assert second.sent == 9  # the suppressed reader gets nothing
    assert "bounce rate 5.26% (1 hard bounces / 19 sent in 7 days) is above 5.00%" in str(second)
    [warning] = [m for m in world.inbox("ops@example.com")]
    assert "bounce or complaint rate too high" in warning["Subject"]


def test_returned_messages_are_forgotten_after_the_keep_days_the_events_stay(settings):
    settings.DIGEST_BOUNCE_KEEP_RAW_DAYS = 30
    subscriber = sent_delivery().subscription.subscriber
    report = Report(kind=BounceKind.SOFT, source="imap", occurred_at=START, fingerprint="f", raw="Subject: x\n\nbody")
    bounce_record(report=report, subscriber=subscriber, now=START)
    assert bounce_raw_prune(now=START + 29 * DAY) == 0
    assert bounce_raw_prune(now=START + 31 * DAY) == 1
    assert BounceEvent.objects.get().raw == "" and BounceEvent.objects.get().kind == BounceKind.SOFT
