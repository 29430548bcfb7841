"""The policy: hard bounces suppress, soft bounces score and decay, complaints unsubscribe, editors lift."""

import datetime
import os
import subprocess
import sys

import pytest

from digest.models import AdminAlert, BounceEvent, BounceKind
from digest.returns.policy import (
    RATES_ALERT,
    Report,
    bounce_rates,
    bounce_raw_prune,
    bounce_record,
    fingerprint_of,
    rates_warn,
    soft_score,
    suppression_lift,
)
from newsletters.models import Subscriber, SubscriberStatus, SubscriptionStatus
from tests.digest.conftest import at
from tests.digest.returns.mail import WINDOW_END, sent_delivery
from tests.digest.test_processes import database_url
from tests.smtp import BlockingHandler, SMTPServer

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


@pytest.fixture
def admins(smtp_server, settings):
    """ADMINS at a real SMTP server; returns a function listing the warnings it received."""
    settings.ADMINS = ["ops@example.com"]
    return lambda: [r.message for r in smtp_server.received if "rate too high" in r.message["Subject"]]


def _high_bounce_rate(readers: int = 20, bounced: int = 2) -> list:
    """`readers` digests sent at WINDOW_END, `bounced` of them hard-bounced an hour later (10% by default)."""
    deliveries = [sent_delivery(f"r{n}@example.com") for n in range(readers)]
    when = WINDOW_END + datetime.timedelta(hours=1)
    for n, delivery in enumerate(deliveries[:bounced]):
        bounce_record(report=_report(BounceKind.HARD, when, n), subscriber=delivery.subscription.subscriber, now=when)
    return deliveries


def _complain(delivery, when) -> None:
    bounce_record(report=_report(BounceKind.COMPLAINT, when), subscriber=delivery.subscription.subscriber, now=when)


def test_the_rate_warning_is_mailed_once_a_day_while_it_lasts_and_logged_every_run(admins, caplog):
    _high_bounce_rate()
    first = WINDOW_END + datetime.timedelta(hours=2)
    runs = [first + datetime.timedelta(minutes=5 * n) for n in range(12)] + [
        first + datetime.timedelta(hours=23, minutes=59)
    ]
    for now in runs:
        assert rates_warn(now=now).startswith("bounce rate 10.00%")
    assert len(admins()) == 1
    assert "once a day" in admins()[0].get_content()
    assert sum("Deliverability: bounce rate" in record.getMessage() for record in caplog.records) == len(runs)
    rates_warn(now=first + datetime.timedelta(hours=24))
    rates_warn(now=first + datetime.timedelta(hours=24, minutes=5))
    assert len(admins()) == 2
    alert = AdminAlert.objects.get(key=RATES_ALERT)
    assert (alert.kinds, alert.mailed_at) == ("bounce", first + datetime.timedelta(hours=24))


def test_a_newly_passed_threshold_is_mailed_at_once(admins, settings):
    deliveries = _high_bounce_rate()
    now = WINDOW_END + datetime.timedelta(hours=2)
    rates_warn(now=now)
    _complain(deliveries[10], now)
    rates_warn(now=now + datetime.timedelta(minutes=5))  # bounce → bounce and complaint
    assert len(admins()) == 2 and "complaint rate 5.00%" in admins()[1].get_content()
    settings.DIGEST_COMPLAINT_RATE_WARN = 0.1  # the complaint rate is under this one
    rates_warn(now=now + datetime.timedelta(minutes=10))
    assert len(admins()) == 2  # the bounce rate was mailed ten minutes ago
    assert AdminAlert.objects.get(key=RATES_ALERT).kinds == "bounce"
    settings.DIGEST_COMPLAINT_RATE_WARN = 0.001
    rates_warn(now=now + datetime.timedelta(minutes=15))  # the complaint rate passes again: news
    assert len(admins()) == 3


def test_a_rate_back_under_that_passes_again_is_mailed_at_once(admins):
    _high_bounce_rate()
    now = WINDOW_END + datetime.timedelta(hours=2)
    rates_warn(now=now)
    more = [sent_delivery(f"more{n}@example.com") for n in range(30)]  # 2 of 50: 4%, under 5%
    assert rates_warn(now=now + datetime.timedelta(minutes=5)) == ""
    assert AdminAlert.objects.get(key=RATES_ALERT).kinds == ""
    later = now + datetime.timedelta(minutes=10)
    for n, delivery in enumerate(more[:2]):
        bounce_record(
            report=_report(BounceKind.HARD, later, f"m{n}"), subscriber=delivery.subscription.subscriber, now=later
        )
    assert rates_warn(now=later).startswith("bounce rate 8.00%")
    assert len(admins()) == 2


def test_a_warning_the_mail_server_refused_is_mailed_by_the_next_run(admins, smtp_server, caplog):
    _high_bounce_rate()
    now = WINDOW_END + datetime.timedelta(hours=2)
    smtp_server.handler.replies["ops@example.com"] = "550 5.1.1 No such user"
    assert rates_warn(now=now)
    assert admins() == [] and "Cannot mail the deliverability warning" in caplog.text
    assert not AdminAlert.objects.filter(key=RATES_ALERT, mailed_at__isnull=False).exists()
    del smtp_server.handler.replies["ops@example.com"]
    rates_warn(now=now + datetime.timedelta(minutes=5))
    assert len(admins()) == 1


@pytest.mark.django_db(transaction=True)
def test_two_machines_warning_at_once_mail_it_once(tmp_path):
    """Each process has its own VAR_DIR and cache: only the database tells them the warning went out."""
    _high_bounce_rate()
    now = WINDOW_END + datetime.timedelta(hours=2)
    # Mailed two days ago about a rate that went back under: the row both processes read.
    AdminAlert.objects.create(key=RATES_ALERT, kinds="", mailed_at=now - 2 * DAY)
    script = (
        "from datetime import datetime; from digest.returns.policy import rates_warn; "
        f"print(rates_warn(now=datetime.fromisoformat('{now.isoformat()}')))"
    )
    with SMTPServer(BlockingHandler(block_at=1)) as smtp:
        env = os.environ | {"DATABASE_URL": database_url(), "EMAIL_URL": smtp.url(), "ADMINS": "ops@example.com"}

        def machine(name: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "manage.py", "shell", "-c", script],
                env=env | {"VAR_DIR": str(tmp_path / name)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        first = machine("a")
        assert smtp.handler.reached.wait(60), first.communicate()  # a's mail is on the wire
        # b warns in its log too, and mails nothing: the database says a has it in hand.
        out, err = machine("b").communicate(timeout=120)
        assert out.splitlines()[-1].startswith("bounce rate 10.00%") and "Deliverability: bounce rate" in err
        smtp.handler.release.set()
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert [r.recipients for r in smtp.received] == [["ops@example.com"]]


def test_returned_messages_are_forgotten_after_the_keep_days_the_events_stay(settings):
    settings.DIGEST_BOUNCE_KEEP_RAW_DAYS = 30
    subscriber = sent_delivery().subscription.subscriber
    report = Report(kind=BounceKind.SOFT, source="imap", occurred_at=START, fingerprint="f", raw="Subject: x\n\nbody")
    bounce_record(report=report, subscriber=subscriber, now=START)
    assert bounce_raw_prune(now=START + 29 * DAY) == 0
    assert bounce_raw_prune(now=START + 31 * DAY) == 1
    assert BounceEvent.objects.get().raw == "" and BounceEvent.objects.get().kind == BounceKind.SOFT
