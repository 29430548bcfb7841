"""`manage.py import_subscribers CSV`: invalid rows reported by line, valid ones applied, idempotent."""

import io

import pytest
from django.core.management import CommandError, call_command

from newsletters.models import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

HEADER = "email,name,timezone,newsletter,frequency\n"


@pytest.fixture(autouse=True)
def newsletters():
    return NewsletterFactory(slug="weekly"), NewsletterFactory(slug="ops")


def run(tmp_path, text: str, *args) -> tuple[str, str]:
    path = tmp_path / "subscribers.csv"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_subscribers", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_valid_rows_create_subscribers_and_subscriptions(tmp_path):
    out, err = run(
        tmp_path,
        HEADER + "ada@example.com,Ada,Europe/London,weekly,daily\n"
        "ada@example.com,Ada,Europe/London,ops,weekly\n"
        "grace@example.com,,,weekly,\n",
    )
    assert err == ""
    assert "3 rows: 2 subscribers created" in out
    ada = Subscriber.objects.get(email="ada@example.com")
    assert (ada.name, ada.timezone, ada.status) == ("Ada", "Europe/London", SubscriberStatus.PENDING)
    assert sorted(ada.subscriptions.values_list("newsletter__slug", "frequency", "status")) == [
        ("ops", "weekly", "pending"),
        ("weekly", "daily", "pending"),
    ]
    grace = Subscriber.objects.get(email="grace@example.com")
    assert grace.timezone == "UTC"
    assert grace.subscriptions.get().frequency == "weekly"


def test_confirmed_activates_subscribers_and_subscriptions(tmp_path):
    run(tmp_path, HEADER + "ada@example.com,Ada,UTC,weekly,daily\n", "--confirmed")
    ada = Subscriber.objects.get()
    assert ada.status == SubscriberStatus.ACTIVE
    assert ada.confirmed_at is not None
    assert ada.subscriptions.get().status == SubscriptionStatus.ACTIVE


def test_invalid_rows_are_reported_with_line_and_reason_and_skipped(tmp_path):
    out, err = run(
        tmp_path,
        HEADER
        + "not-an-email,A,UTC,weekly,daily\n"
        + "b@example.com,B,Mars/Base,weekly,daily\n"
        + "c@example.com,C,UTC,unknown,daily\n"
        + "d@example.com,D,UTC,weekly,hourly\n"
        + '"e@example.com","Evil\nBcc: x@example.com",UTC,weekly,daily\n'
        + ("f" * 250)
        + "@example.com,F,UTC,weekly,daily\n"
        + "g@example.com,G,UTC,weekly,daily,extra\n"
        + ",H,UTC,weekly,daily\n"
        + "ok@example.com,OK,UTC,weekly,daily\n",
    )
    lines = err.strip().splitlines()
    assert lines == [
        "line 2: email 'not-an-email': Enter a valid email address.",
        "line 3: timezone: Mars/Base is not a known time zone.",
        "line 4: unknown newsletter 'unknown'",
        "line 5: frequency 'hourly' is not one of immediate, daily, weekly",
        "line 7: name: Line breaks are not allowed here.",
        "line 8: email is longer than 254 characters",
        "line 9: more fields than the header has columns",
        "line 10: email is empty",
    ]
    assert "9 rows: 1 subscribers created" in out and "8 invalid" in out
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ok@example.com"]


def test_rerun_is_idempotent(tmp_path):
    text = HEADER + "ada@example.com,Ada,UTC,weekly,daily\nbob@example.com,Bob,UTC,ops,weekly\n"
    run(tmp_path, text, "--confirmed")
    state = list(Subscription.objects.values_list("subscriber__email", "newsletter__slug", "frequency", "status"))
    out, _ = run(tmp_path, text, "--confirmed")
    assert "0 subscribers created, 0 updated; 0 subscriptions created, 0 updated; 2 unchanged" in out
    assert (
        list(Subscription.objects.values_list("subscriber__email", "newsletter__slug", "frequency", "status")) == state
    )


def test_existing_subscriber_is_updated_case_insensitively(tmp_path):
    SubscriberFactory(email="Ada@Example.com", name="Old", timezone="UTC")
    out, _ = run(tmp_path, HEADER + "ada@example.com,New,Asia/Tokyo,weekly,immediate\n")
    ada = Subscriber.objects.get()
    assert (ada.email, ada.name, ada.timezone) == ("Ada@Example.com", "New", "Asia/Tokyo")
    assert "1 updated" in out


def test_opted_out_addresses_are_never_resubscribed(tmp_path, newsletters):
    SubscriberFactory(email="gone@example.com", status=SubscriberStatus.UNSUBSCRIBED)
    left = SubscriptionFactory(newsletter=newsletters[0], status=SubscriptionStatus.UNSUBSCRIBED)
    out, _ = run(
        tmp_path,
        HEADER + f"gone@example.com,G,UTC,weekly,daily\n{left.subscriber.email},L,UTC,weekly,daily\n",
        "--confirmed",
    )
    assert "2 skipped (unsubscribed or suppressed)" in out
    left.refresh_from_db()
    assert left.status == SubscriptionStatus.UNSUBSCRIBED
    assert not Subscription.objects.filter(subscriber__email="gone@example.com").exists()


def test_import_without_confirmed_never_downgrades_an_active_subscriber(tmp_path):
    run(tmp_path, HEADER + "ada@example.com,Ada,UTC,weekly,daily\n", "--confirmed")
    run(tmp_path, HEADER + "ada@example.com,Ada,UTC,weekly,daily\n")
    assert Subscriber.objects.get().status == SubscriberStatus.ACTIVE


def test_missing_columns_fail_clearly(tmp_path):
    with pytest.raises(CommandError, match="lacks newsletter"):
        run(tmp_path, "email,name\nada@example.com,Ada\n")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_subscribers", str(tmp_path / "missing.csv"))
