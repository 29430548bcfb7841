"""The ledger: claims, outcomes, give-ups, failure streaks, held groups."""

import datetime

import pytest

from digest.models import Delivery, DeliveryStatus
from newsletters.models import Attachment, Newsletter, Subscriber, SubscriberStatus, SubscriptionStatus
from tests.digest.conftest import at
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def test_transient_failures_give_up_after_max_attempts(world, settings):
    settings.DIGEST_MAX_ATTEMPTS = 2
    settings.DIGEST_RETRY_BACKOFF = 60
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.replies["ada@example.com"] = "452 Mailbox full"
    world.run(at(2026, 6, 2, 8, 5))
    summary = world.run(at(2026, 6, 2, 9, 0))
    assert summary.failed == 1
    assert "gave up after 2 attempts" in Delivery.objects.get().last_error


def test_success_resets_the_failure_streak(world, settings):
    settings.DIGEST_SUPPRESS_AFTER = 2
    world.subscribe("flaky@example.com", frequency="daily", since=at(2026, 6, 1))
    world.smtp.handler.replies["flaky@example.com"] = "550 Rejected"
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    del world.smtp.handler.replies["flaky@example.com"]
    world.publish("Issue b", at(2026, 6, 2, 12, 0))
    world.run(at(2026, 6, 3, 8, 5))
    world.smtp.handler.replies["flaky@example.com"] = "550 Rejected"
    world.publish("Issue c", at(2026, 6, 3, 12, 0))
    world.run(at(2026, 6, 4, 8, 5))
    from newsletters.models import Subscriber

    assert Subscriber.objects.get().status == SubscriberStatus.ACTIVE


def test_unsubscribe_after_planning_is_honoured(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from digest.planning.due import subscriptions_schedule
    from digest.planning.plan import deliveries_plan

    now = at(2026, 6, 2, 8, 5)
    subscriptions_schedule(now=now)
    assert deliveries_plan(now=now)["planned"] == 2
    subscription.status = SubscriptionStatus.UNSUBSCRIBED
    subscription.save()
    summary = world.run(now)
    assert (summary.sent, summary.skipped) == (1, 1)
    assert world.inbox("ada@example.com") == []
    assert Delivery.objects.get(subscription=subscription).status == DeliveryStatus.SKIPPED


def test_claims_read_on_from_the_last_claimed_id_and_a_run_still_sends_everything(world, settings):
    from digest.sending.ledger import deliveries_claim

    settings.DIGEST_BATCH_SIZE = 2
    for n in range(5):
        world.subscribe(f"r{n}@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from digest.planning.due import subscriptions_schedule
    from digest.planning.plan import deliveries_plan

    subscriptions_schedule(now=at(2026, 6, 2, 8, 5))
    deliveries_plan(now=at(2026, 6, 2, 8, 5))
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    claimed = deliveries_claim(
        now=at(2026, 6, 2, 8, 5), claimant="x", limit=10, after_id=ids[2], stamp=at(2026, 6, 2, 8, 5)
    )
    assert sorted(d.id for d in claimed) == ids[3:]
    # Released again, a run claims them in batches of two, each from where the last ended.
    Delivery.objects.filter(id__in=ids[3:]).update(status=DeliveryStatus.PENDING, claimed_by="")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 5
    assert sorted(r.recipients[0] for r in world.smtp.received) == [f"r{n}@example.com" for n in range(5)]


# A fault of the group (newsletter settings, rendering, our sender) holds it; no reader is blamed.


@pytest.fixture
def admins(settings):
    settings.ADMINS = ["ops@example.com"]


def reader_untouched(subscription) -> None:
    subscription.refresh_from_db()
    assert subscription.cursor is None
    assert subscription.subscriber.consecutive_failures == 0
    assert subscription.subscriber.status == "active"


@pytest.mark.parametrize("from_email", ["just some text", "a@example.com, b@example.com", "Name <bad>"])
def test_a_bad_from_holds_the_group_and_counts_against_nobody(world, admins, settings, from_email):
    settings.DIGEST_SUPPRESS_AFTER = 1
    subscription = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    # Saved before From was validated (the model refuses it now): the engine must still cope.
    Newsletter.objects.filter(pk=world.newsletter.pk).update(from_email=from_email)
    for day in (2, 3, 4):  # three runs would have suppressed the whole list
        summary = world.run(at(2026, 6, day, 8, 5))
        assert (summary.sent, summary.failed, summary.suppressed) == (0, 0, 0)
    assert summary.held == 1
    reader_untouched(subscription)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DEFERRED and "From" in delivery.last_error
    assert delivery.attempts == 0  # held runs are not attempts: it is never given up on
    reports = world.inbox("ops@example.com")
    assert reports and "held" in reports[0]["Subject"] and from_email in reports[0].get_content()

    # Fixed: the next retry sends the whole window, and the cursor moves on.
    Newsletter.objects.filter(pk=world.newsletter.pk).update(from_email="News <news@example.com>")
    summary = world.run(at(2026, 6, 5, 8, 5))
    assert summary.sent == 1
    assert world.titles("ada@example.com") == ["Issue a"]
    subscription.refresh_from_db()
    assert subscription.cursor is not None


def test_the_relay_refusing_our_sender_holds_the_group(world, admins):
    subscription = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.replies["news@example.com"] = "550 5.7.1 Sender not allowed"
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed, summary.held) == (0, 0, 2)
    reader_untouched(subscription)
    assert "refused the sender" in Delivery.objects.first().last_error
    del world.smtp.handler.replies["news@example.com"]
    assert world.run(at(2026, 6, 3, 8, 5)).sent == 2


def test_a_group_that_cannot_render_is_held_and_the_rest_of_the_run_goes_on(world, admins, settings):
    other = NewsletterFactory(slug="other", from_email="Other <other@example.com>")
    broken = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", since=at(2026, 6, 1), newsletter=other)
    issue = world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.publish("Issue b", at(2026, 6, 1, 12, 0), newsletter=other)
    # The attachment's file vanished from media (a lost volume): rendering raises OSError.
    Attachment.objects.create(issue=issue, file="attachments/gone/report.pdf")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.held, summary.failed) == (1, 1, 0)
    assert world.titles("bob@example.com") == ["Issue b"]
    assert world.inbox("ada@example.com") == []
    reader_untouched(broken)
    assert Delivery.objects.get(subscription=broken).status == DeliveryStatus.DEFERRED
    assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()
    assert "cannot render" in world.inbox("ops@example.com")[0].get_content()


def test_a_held_delivery_waits_longer_the_longer_it_is_held(world, settings):
    settings.DIGEST_RETRY_BACKOFF = 60
    settings.DIGEST_RETRY_MAX = 6 * 3600
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    Newsletter.objects.filter(pk=world.newsletter.pk).update(from_email="not an address")
    world.run(at(2026, 6, 2, 8, 5))
    delivery = Delivery.objects.get()
    first_wait = delivery.next_attempt_at - at(2026, 6, 2, 8, 5)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=at(2026, 6, 1, 8, 5))  # held for a day
    second_run = delivery.next_attempt_at + datetime.timedelta(seconds=1)
    world.run(second_run)
    delivery.refresh_from_db()
    assert first_wait == datetime.timedelta(minutes=1)
    assert delivery.next_attempt_at - second_run == datetime.timedelta(hours=6)  # a day held, capped at RETRY_MAX
    assert Subscriber.objects.get().consecutive_failures == 0


def test_a_message_too_big_for_the_relay_holds_the_group(world, admins, caplog):
    subscription = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.data_reply = "552 5.3.4 Message size exceeds fixed maximum message size"
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.failed, summary.held) == (0, 1)
    reader_untouched(subscription)
    assert "552" in Delivery.objects.get().last_error
    # The report to ADMINS was refused the same way: logged, and the run still ends normally.
    assert "Cannot mail the run's report" in caplog.text


def test_other_5xx_replies_to_data_still_fail_that_reader(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.data_reply = "550 5.1.1 Mailbox unavailable"
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.failed, summary.held) == (1, 0)
    assert Subscriber.objects.get().consecutive_failures == 1


def test_a_5_3_4_size_refusal_with_another_code_holds_the_group_too(world, admins):
    subscription = world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.data_reply = "554 5.3.4 Message too big for system"
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.failed, summary.held) == (0, 1)
    reader_untouched(subscription)
