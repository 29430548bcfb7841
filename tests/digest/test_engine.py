"""The digest engine end to end, against a real SMTP server (aiosmtpd on loopback)."""

import datetime
import re
from unittest import mock

import pytest
from django.core import mail
from premailer import Premailer

from digest.models import Delivery, DeliveryStatus, Rendering
from newsletters.models import Attachment, SubscriberStatus, SubscriptionStatus
from tests.digest.conftest import at, body

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def test_daily_digest_message_is_complete(world, settings, tmp_path):
    settings.SITE_URL = "https://news.example.com"
    settings.DIGEST_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    ada = world.subscribe("ada@example.com", name="Ada Lovelace", since=at(2026, 6, 1))
    world.subscribe("zoe@example.com", name="Zoë Ünicode", since=at(2026, 6, 1))
    first = world.publish("Issue one", at(2026, 6, 2, 9, 0), body="# Head\n\nSee [docs](https://docs.example.com).")
    world.publish("Issue two", at(2026, 6, 2, 10, 0), body="| a | b |\n|---|---|\n| 1 | 2 |\n")
    upload = tmp_path / "report.pdf"
    upload.write_bytes(b"%PDF-1.4 report")
    from django.core.files import File

    with upload.open("rb") as handle:
        Attachment.objects.create(issue=first, file=File(handle, name="report.pdf"))

    summary = world.run(at(2026, 6, 3, 8, 5))
    assert (summary.due, summary.sent, summary.groups_rendered) == (2, 2, 1)

    message = world.inbox("ada@example.com")[0]
    assert message.get_content_type() == "multipart/mixed"
    alternative = next(part for part in message.walk() if part.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Weekly Notes: 2 new issues (1 Jun – 3 Jun 2026)"
    assert message["From"] == "News <news@example.com>"
    assert message["To"] == "Ada Lovelace <ada@example.com>"
    assert message["Reply-To"] == "editors@example.com"
    assert message["List-Id"] == "Weekly Notes <weekly.news.example.com>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Date"] is not None
    delivery = Delivery.objects.get(subscription=ada)
    assert message["Message-ID"] == delivery.message_id
    unsubscribe = "https://news.example.com/u/"
    header = message["List-Unsubscribe"]
    assert (
        header.startswith(f"<{unsubscribe}")
        and f"<mailto:unsubscribe@example.com?subject=unsubscribe-{ada.pk}>" in header
    )

    html = body(message, "html")
    text = body(message, "plain")
    assert 'style="' in html and "<style>@media" in html.replace("\n", "")  # inlined, @media kept
    assert "Hi Ada Lovelace," in html and "Hi Ada Lovelace," in text
    assert "docs <https://docs.example.com>" in text and "Head\n====" in text
    personal_url = header.split(",")[0].strip("<>")
    assert personal_url in html and personal_url in text
    attachments = list(message.iter_attachments())
    assert [(a.get_filename(), a.get_content()) for a in attachments] == [("report.pdf", b"%PDF-1.4 report")]

    other = world.inbox("zoe@example.com")[0]
    assert other["To"] == "Zoë Ünicode <zoe@example.com>"
    other_url = other["List-Unsubscribe"].split(",")[0].strip("<>")
    assert other_url != personal_url
    assert "Hi Zoë Ünicode," in body(other, "plain")


def test_premailer_runs_once_per_group_not_per_subscriber(world):
    for n in range(6):
        world.subscribe(f"d{n}@example.com", frequency="daily", since=at(2026, 6, 1))
    for n in range(4):
        world.subscribe(f"t{n}@example.com", frequency="daily", tz="Asia/Tokyo", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 12, 0))
    with mock.patch.object(Premailer, "transform", autospec=True, side_effect=Premailer.transform) as spy:
        summary = world.run(at(2026, 6, 3, 8, 5))
    # UTC readers' window ends 3 June 08:00 UTC, Tokyo readers' 2 June 23:00 UTC: two groups.
    assert summary.sent == 10
    assert summary.groups_rendered == 2
    assert spy.call_count == 2


def test_a_retry_reuses_its_groups_rendering_until_an_issue_changes(world, settings):
    settings.DIGEST_RETRY_BACKOFF = 60
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    issue = world.publish("Issue a", at(2026, 6, 1, 12, 0), body="First wording.")
    world.smtp.handler.replies["ada@example.com"] = "451 4.7.1 Try again later"
    with mock.patch.object(Premailer, "transform", autospec=True, side_effect=Premailer.transform) as spy:
        assert world.run(at(2026, 6, 2, 8, 5)).sent == 1
        del world.smtp.handler.replies["ada@example.com"]
        retry = world.run(at(2026, 6, 2, 8, 7))
        assert (retry.sent, retry.groups_rendered, retry.groups_reused) == (1, 0, 1)
        assert spy.call_count == 1  # the retry sent the rendering the first run made
        assert str(retry).endswith("; 1 groups reused from another run")
    [ada], [bob] = world.inbox("ada@example.com"), world.inbox("bob@example.com")

    def impersonal(message) -> str:  # the digest without the reader's name and links
        return re.sub(r"/[up]/[^/]+/", "/…/", body(message, "html")).replace("Bob", "Ada")

    assert "First wording." in body(ada, "plain")
    assert impersonal(ada) == impersonal(bob)

    # An edit changes the rendering's signature: the next retry renders again.
    world.smtp.handler.replies["cy@example.com"] = "451 4.7.1 Try again later"
    world.subscribe("cy@example.com", frequency="daily", since=at(2026, 6, 1))
    Delivery.objects.all().delete()
    from newsletters.models import Subscription

    Subscription.objects.update(cursor=None, next_due_at=None)
    world.run(at(2026, 6, 2, 8, 9))
    del world.smtp.handler.replies["cy@example.com"]
    issue.body = "Corrected wording."
    issue.save()
    with mock.patch.object(Premailer, "transform", autospec=True, side_effect=Premailer.transform) as spy:
        retry = world.run(at(2026, 6, 2, 8, 11))
    assert (retry.sent, retry.groups_rendered, spy.call_count) == (1, 1, 1)
    assert "Corrected wording." in body(world.inbox("cy@example.com")[0], "plain")
    # Renderings older than a day are cleared by later runs.
    assert Rendering.objects.count() == 1
    world.run(at(2026, 6, 3, 9, 0))
    assert Rendering.objects.count() == 0


def test_reruns_send_nothing_twice_and_skip_nothing(world):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="immediate", since=at(2026, 6, 1))
    world.subscribe("cy@example.com", frequency="weekly", since=at(2026, 6, 1))
    clock = at(2026, 6, 1, 0, 0)
    for day in range(15):
        for hour in (6, 13):
            world.publish(f"Issue d{day}h{hour}", clock + day * DAY + datetime.timedelta(hours=hour))
    # Runs every 6 hours for 16 days, each run twice (a re-run right after).
    moment = clock
    while moment < clock + 16 * DAY:
        world.run(moment)
        world.run(moment)
        moment += datetime.timedelta(hours=6)
    expected = [f"Issue d{day}h{hour}" for day in range(15) for hour in (6, 13)]
    for email in ("ada@example.com", "bob@example.com"):
        assert world.titles(email) == expected, email
    # Weekly, Mondays 08:00: 1, 8 and 15 June 2026; only the issue of 15 June 13:00 is still to come.
    assert world.titles("cy@example.com") == expected[:-1]
    assert len(world.inbox("cy@example.com")) == 3


def test_missed_runs_are_caught_up_in_one_digest(world):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    # The server is off for two days; three issues appear meanwhile.
    world.publish("Issue b", at(2026, 6, 2, 12, 0))
    world.publish("Issue c", at(2026, 6, 3, 12, 0))
    world.publish("Issue d", at(2026, 6, 4, 7, 0))
    summary = world.run(at(2026, 6, 4, 10, 0))
    assert summary.sent == 1
    assert len(world.inbox("ada@example.com")) == 2
    assert world.titles("ada@example.com") == ["Issue a", "Issue b", "Issue c", "Issue d"]


def test_empty_window_sends_nothing_and_advances(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.due, summary.empty, summary.sent) == (1, 1, 0)
    subscription.refresh_from_db()
    assert subscription.cursor == at(2026, 6, 2, 8, 0)
    assert subscription.next_due_at == at(2026, 6, 3, 8, 0)
    assert not Delivery.objects.exists()
    assert world.smtp.received == []


def test_only_published_issues_whose_time_has_passed_count(world):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue draft", at(2026, 6, 1, 12, 0), status="draft")
    world.publish("Issue future", at(2026, 6, 2, 9, 0))
    world.publish("Issue now", at(2026, 6, 1, 13, 0))
    world.run(at(2026, 6, 2, 8, 5))
    assert world.titles("ada@example.com") == ["Issue now"]
    world.run(at(2026, 6, 3, 8, 5))
    assert world.titles("ada@example.com") == ["Issue now", "Issue future"]


def test_frequency_changes_never_repeat_or_drop_issues(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    expected = []
    moment = at(2026, 6, 1)
    for day in range(28):
        title = f"Issue {day}"
        world.publish(title, moment + day * DAY + datetime.timedelta(hours=10))
        expected.append(title)
    frequencies = {3: "weekly", 12: "immediate", 17: "daily", 20: "weekly", 25: "immediate"}
    for hour in range(0, 30 * 24, 6):
        now = moment + datetime.timedelta(hours=hour)
        if hour % 24 == 0 and hour // 24 in frequencies:
            subscription.refresh_from_db()
            subscription.frequency = frequencies[hour // 24]
            subscription.next_due_at = None
            subscription.save()
        world.run(now)
    assert world.titles("ada@example.com") == expected


def test_unsubscribe_after_planning_is_honoured(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from digest.aggregation import deliveries_plan
    from digest.scheduling import subscriptions_schedule

    now = at(2026, 6, 2, 8, 5)
    subscriptions_schedule(now=now)
    assert deliveries_plan(now=now)["planned"] == 2
    subscription.status = SubscriptionStatus.UNSUBSCRIBED
    subscription.save()
    summary = world.run(now)
    assert (summary.sent, summary.skipped) == (1, 1)
    assert world.inbox("ada@example.com") == []
    assert Delivery.objects.get(subscription=subscription).status == DeliveryStatus.SKIPPED


@pytest.mark.parametrize("pipelining", [False, True])
def test_transient_failure_is_retried_with_backoff(world, settings, pipelining):
    world.smtp.handler.pipelining = pipelining
    settings.DIGEST_RETRY_BACKOFF = 600
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.replies["ada@example.com"] = "451 4.7.1 Try again later"
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred) == (1, 1)
    delivery = Delivery.objects.get(subscription__subscriber__email="ada@example.com")
    assert delivery.status == DeliveryStatus.DEFERRED
    assert delivery.next_attempt_at == at(2026, 6, 2, 8, 15)
    assert "451" in delivery.last_error
    del world.smtp.handler.replies["ada@example.com"]
    assert world.run(at(2026, 6, 2, 8, 10)).sent == 0  # still backing off
    assert world.run(at(2026, 6, 2, 8, 16)).sent == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert world.titles("ada@example.com") == ["Issue a"]
    # The retry carried the same Message-ID and the cursor then moved on normally.
    assert world.inbox("ada@example.com")[0]["Message-ID"] == delivery.message_id


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


@pytest.mark.parametrize("pipelining", [False, True])
def test_permanent_failure_is_recorded_and_does_not_block_others(world, settings, pipelining):
    world.smtp.handler.pipelining = pipelining
    settings.ADMINS = ["ops@example.com"]
    settings.DIGEST_SUPPRESS_AFTER = 2
    world.subscribe("gone@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.replies["gone@example.com"] = "550 5.1.1 No such user"
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed, summary.suppressed) == (1, 1, 0)
    failed = Delivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.last_error.startswith("550")
    # One report to ADMINS for the run (sent through the default mailer: the same SMTP server).
    reports = world.inbox("ops@example.com")
    assert len(reports) == 1 and "gone@example.com: 550" in reports[0].get_content()
    # The window was consumed: a second permanent failure the next day suppresses the reader.
    world.publish("Issue b", at(2026, 6, 2, 12, 0))
    summary = world.run(at(2026, 6, 3, 8, 5))
    assert (summary.failed, summary.suppressed) == (1, 1)
    assert world.titles("bob@example.com") == ["Issue a", "Issue b"]
    from newsletters.models import Subscriber

    assert Subscriber.objects.get(email="gone@example.com").status == SubscriberStatus.SUPPRESSED
    world.publish("Issue c", at(2026, 6, 3, 12, 0))
    assert world.run(at(2026, 6, 4, 8, 5)).due == 1  # the suppressed reader is no longer due


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


def test_dst_change_keeps_one_digest_per_local_morning(world):
    world.subscribe("paris@example.com", frequency="daily", tz="Europe/Paris", since=at(2026, 3, 26))
    moment = at(2026, 3, 26, 0, 5)
    for day in range(6):
        world.publish(f"Issue {day}", at(2026, 3, 26, 12, 0) + day * DAY)
    while moment < at(2026, 4, 1):
        world.run(moment)
        moment += datetime.timedelta(hours=1)
    received = world.inbox("paris@example.com")
    # 27, 28 March at 08:00 CET (07:00 UTC); from 29 March at 08:00 CEST (06:00 UTC).
    assert [m["Subject"] for m in received] == [f"Issue {n}" for n in range(5)]
    windows = list(Delivery.objects.order_by("window_end").values_list("window_end", flat=True))
    assert windows == [
        at(2026, 3, 27, 7),
        at(2026, 3, 28, 7),
        at(2026, 3, 29, 6),
        at(2026, 3, 30, 6),
        at(2026, 3, 31, 6),
    ]


@pytest.mark.parametrize("pipelining", [False, True])
def test_dropped_connection_is_recovered_and_the_batch_continues(world, settings, pipelining):
    world.smtp.handler.pipelining = pipelining
    settings.DIGEST_BATCH_SIZE = 10
    for n in range(6):
        world.subscribe(f"r{n}@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.smtp.handler.drop_after = 3  # the server hangs up after accepting three messages
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 6
    assert sorted(r.recipients[0] for r in world.smtp.received) == [f"r{n}@example.com" for n in range(6)]
    assert world.smtp.handler.connections == 2


def test_unreachable_server_defers_everything(world, settings):
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    settings.MAILERS = {**settings.MAILERS, "digest": {"OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2}}}
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.deferred) == (0, 1)
    assert Delivery.objects.get().status == DeliveryStatus.DEFERRED


def test_header_injection_in_a_stored_name_is_cleaned_before_sending(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from newsletters.models import Subscriber

    # Bypass the form and DB checks (as a raw import might): the name is only a greeting,
    # so the reader still gets the digest, with the control characters gone.
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(name="Ada\u2028Bcc:\x1dvictim@example.com")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed) == (2, 0)
    assert all("victim@example.com" not in r.recipients for r in world.smtp.received)
    (message,) = world.inbox("ada@example.com")
    assert message["Bcc"] is None
    assert message["To"].addresses[0].display_name == "Ada Bcc: victim@example.com"
    assert "\u2028" not in body(message, "plain") and "\x1d" not in body(message, "plain")


def test_a_malformed_stored_address_fails_only_that_reader(world):
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from newsletters.models import Subscriber

    Subscriber.objects.filter(pk=subscription.subscriber_id).update(email="ada@example.com\rBcc: victim@example.com")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed) == (1, 1)
    assert all("victim@example.com" not in r.recipients for r in world.smtp.received)
    assert "not sent" in Delivery.objects.get(subscription=subscription).last_error


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


def test_oversized_attachments_are_linked_instead(world, settings, tmp_path):
    settings.DIGEST_ATTACHMENT_MAX_BYTES = 10
    settings.SITE_URL = "https://news.example.com"
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    issue = world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from django.core.files.base import ContentFile

    Attachment.objects.create(issue=issue, file=ContentFile(b"x" * 11, name="big.zip"))
    world.run(at(2026, 6, 2, 8, 5))
    message = world.inbox("ada@example.com")[0]
    assert list(message.iter_attachments()) == []
    text = body(message, "plain")
    assert "too large to attach" in text
    assert "https://news.example.com/media/attachments/" in text and "big.zip" in text


def test_mail_goes_through_the_configured_digest_mailer(world, settings):
    settings.MAILERS = {**settings.MAILERS, "digest": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    assert world.run(at(2026, 6, 2, 8, 5)).sent == 1
    assert [m.to for m in mail.outbox] == [["Ada <ada@example.com>"]]
    assert world.smtp.received == []


def test_a_subject_with_a_line_break_holds_the_group_without_blaming_readers(world, settings):
    settings.ADMINS = ["ops@example.com"]
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    issue = world.publish("Issue a", at(2026, 6, 1, 12, 0))
    # U+2028 passes the database's CR/LF check but is a line break to mail software.
    type(issue).objects.filter(pk=issue.pk).update(title="Issue a\u2028Bcc: victim@example.com")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed, summary.held, summary.groups_rendered) == (0, 0, 1, 0)
    assert world.inbox("ada@example.com") == []
    delivery = Delivery.objects.get()
    assert delivery.status == "deferred" and "line break" in delivery.last_error
    subscription.refresh_from_db()
    assert subscription.cursor is None and subscription.subscriber.consecutive_failures == 0
    (report,) = world.inbox("ops@example.com")
    assert "held" in report["Subject"] and "line break" in report.get_content()


def test_claims_read_on_from_the_last_claimed_id_and_a_run_still_sends_everything(world, settings):
    from digest.ledger import deliveries_claim

    settings.DIGEST_BATCH_SIZE = 2
    for n in range(5):
        world.subscribe(f"r{n}@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from digest.aggregation import deliveries_plan
    from digest.scheduling import subscriptions_schedule

    subscriptions_schedule(now=at(2026, 6, 2, 8, 5))
    deliveries_plan(now=at(2026, 6, 2, 8, 5))
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    claimed = deliveries_claim(now=at(2026, 6, 2, 8, 5), claimant="x", limit=10, after_id=ids[2])
    assert sorted(d.id for d in claimed) == ids[3:]
    # Released again, a run claims them in batches of two, each from where the last ended.
    Delivery.objects.filter(id__in=ids[3:]).update(status=DeliveryStatus.PENDING, claimed_by="")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert summary.sent == 5
    assert sorted(r.recipients[0] for r in world.smtp.received) == [f"r{n}@example.com" for n in range(5)]
