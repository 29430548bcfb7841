"""Delivery: each reader's message as sent to a real SMTP server, and every kind of reply."""

import datetime

import pytest
from django.core import mail

from digest.models import Delivery, DeliveryStatus
from newsletters.models import Attachment, Subscriber, SubscriberStatus
from tests.digest.conftest import at, body, mailto_unsubscribe_names, style_block_rules

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
    assert message["Subject"] == "Weekly Notes: 2 new issues (2 Jun – 3 Jun 2026)"
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
    assert header.startswith(f"<{unsubscribe}") and mailto_unsubscribe_names(header) == ada.pk

    html = body(message, "html")
    text = body(message, "plain")
    assert html.startswith("<!doctype html>") and 'style="' in html
    # All inlined but the @media rules, which only a <style> can hold.
    assert style_block_rules(html) and all(rule.startswith("@media") for rule in style_block_rules(html))
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

    assert Subscriber.objects.get(email="gone@example.com").status == SubscriberStatus.SUPPRESSED
    world.publish("Issue c", at(2026, 6, 3, 12, 0))
    assert world.run(at(2026, 6, 4, 8, 5)).due == 1  # the suppressed reader is no longer due


@pytest.mark.parametrize("pipelining", [False, True])
def test_dropped_connection_is_recovered_and_the_batch_continues(world, settings, pipelining):
    world.smtp.handler.pipelining = pipelining
    settings.DIGEST_BATCH_SIZE = 10
    settings.DIGEST_CONNECTIONS = 1
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

    Subscriber.objects.filter(pk=subscription.subscriber_id).update(email="ada@example.com\rBcc: victim@example.com")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed) == (1, 1)
    assert all("victim@example.com" not in r.recipients for r in world.smtp.received)
    assert "not sent" in Delivery.objects.get(subscription=subscription).last_error


def test_mail_goes_through_the_configured_digest_mailer(world, settings):
    settings.MAILERS = {**settings.MAILERS, "digest": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    assert world.run(at(2026, 6, 2, 8, 5)).sent == 1
    assert [m.to for m in mail.outbox] == [["Ada <ada@example.com>"]]
    assert world.smtp.received == []
