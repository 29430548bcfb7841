"""`manage.py import_subscribers CSV`: invalid rows reported by line, valid ones applied, idempotent."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from newsletters.models import Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.subscribers_csv import subscriber_enrol
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
    assert "importing: 3/3 rows (100%)" in out  # progress, as a line with its rate (not a terminal)
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
        "line 5: frequency 'hourly' is not one of immediate, daily, weekly, fortnightly, monthly",
        "line 6: name: Line breaks are not allowed here.",  # the row starts on line 6 and spans two
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


def run_bytes(tmp_path, data: bytes, *args) -> tuple[str, str]:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_subscribers", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_without_confirmed_an_active_readers_new_subscription_stays_pending(tmp_path, newsletters):
    SubscriptionFactory(newsletter=newsletters[0], subscriber=SubscriberFactory(email="ada@example.com"))
    run(tmp_path, HEADER + "ada@example.com,Ada,UTC,ops,daily\n")
    ops = Subscription.objects.get(newsletter=newsletters[1])
    assert ops.status == SubscriptionStatus.PENDING  # Ada never opted in to ops
    assert Subscription.objects.get(newsletter=newsletters[0]).status == SubscriptionStatus.ACTIVE
    out, _ = run(tmp_path, HEADER + "ada@example.com,Ada,UTC,ops,daily\n")
    assert "1 unchanged" in out


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "The file is empty"),
        (HEADER.encode() + b"ada@example.com,Ad\xe9,UTC,weekly,daily\n", "line 2 is not UTF-8 (byte 0xe9)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1 is not UTF-8"),
        (b"\x00\x01\x02", "lacks email, newsletter"),
        (b"email,email,newsletter\n", "repeats email"),
    ],
)
def test_a_file_that_cannot_be_read_imports_nothing(tmp_path, data, expected):
    with pytest.raises(CommandError) as caught:
        run_bytes(tmp_path, data)
    assert expected in str(caught.value)
    assert not Subscriber.objects.exists()


def test_a_bad_byte_late_in_a_big_file_imports_nothing(tmp_path):
    rows = "".join(f"r{n}@example.com,R{n},UTC,weekly,daily\n" for n in range(3000))
    data = (HEADER + rows).encode() + b"late@example.com,L\xff,UTC,weekly,daily\n"
    with pytest.raises(CommandError, match="line 3002 is not UTF-8"):
        run_bytes(tmp_path, data)
    assert not Subscriber.objects.exists()  # not 2,359 of 3,000


def test_bom_crlf_and_old_mac_line_ends_are_read(tmp_path):
    for data in (
        b"\xef\xbb\xbf" + HEADER.replace("\n", "\r\n").encode() + b"ada@example.com,Ada,UTC,weekly,daily\r\n",
        HEADER.replace("\n", "\r").encode() + b"bob@example.com,Bob,UTC,weekly,daily\r",
    ):
        out, err = run_bytes(tmp_path, data)
        assert err == "" and "1 subscribers created" in out
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["ada@example.com", "bob@example.com"]


def test_huge_fields_nul_bytes_and_controls_are_row_errors(tmp_path):
    out, err = run_bytes(
        tmp_path,
        HEADER.encode()
        + b"big@example.com," + b"x" * 200_000 + b",UTC,weekly,daily\n"
        + b"tz@example.com,T," + b"E" * 200_000 + b",weekly,daily\n"
        + b"nul@exam\x00ple.com,N,UTC,weekly,daily\n"
        + b"name@example.com,Na\x00me,UTC,weekly,daily\n"
        + b"slug@example.com,S,UTC,week\x00ly,daily\n"
        + b"sep@example.com,Se\x1dp,UTC,weekly,daily\n"
        + "zoe@Bücher.example,Zoë Ünicode,Asia/Tokyo,weekly,daily\n".encode(),
    )  # fmt: skip
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["line 2", "line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "name is longer than 200 characters" in lines[0] and "timezone is longer" in lines[1]
    assert all(len(line) < 300 for line in lines)  # a huge value is never echoed whole
    assert list(Subscriber.objects.values_list("email", "name")) == [("zoe@bücher.example", "Zoë Ünicode")]


@pytest.mark.parametrize("path", ["missing.csv", ".", "/dev/zero"])
def test_paths_that_are_not_files_get_a_clear_error(tmp_path, path):
    target = tmp_path / path if not path.startswith("/") else path
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_subscribers", str(target))


def test_an_admin_export_imports_back_unchanged(tmp_path, newsletters, admin_client):
    names = {"+plus@example.com": "=cmd|' /C calc'!A0", "=sum@example.com": "@handle", "-minus@example.com": "-5"}
    for email, name in names.items():
        SubscriptionFactory(newsletter=newsletters[0], subscriber=SubscriberFactory(email=email, name=name))
    response = admin_client.post(
        "/admin/newsletters/subscription/",
        {
            "action": "export_subscriptions_csv",
            "_selected_action": list(Subscription.objects.values_list("pk", flat=True)),
        },
    )
    assert b"'+plus@example.com" in response.content  # the formula guard is in the export
    before = set(Subscriber.objects.values_list("email", "name"))
    out, err = run_bytes(tmp_path, response.content, "--confirmed")
    assert err == "" and "0 subscribers created" in out
    assert set(Subscriber.objects.values_list("email", "name")) == before


def test_one_address_with_two_names_is_reported_and_a_rerun_changes_nothing(tmp_path):
    text = (
        HEADER
        + "ada@example.com,Ada,UTC,weekly,daily\n"
        + "ada@example.com,Ada L.,UTC,ops,daily\n"
        + "ada@example.com,Ada,Europe/Paris,ops,daily\n"
        + "ada@example.com,Ada,UTC,weekly,weekly\n"
        + "ada@example.com,Ada,UTC,ops,weekly\n"
    )
    out, err = run(tmp_path, text, "--confirmed")
    assert err.strip().splitlines() == [
        "line 3: ada@example.com is on line 2 with another name or time zone; give each address one name and time zone",
        "line 4: ada@example.com is on line 2 with another name or time zone; give each address one name and time zone",
        "line 5: ada@example.com and weekly are already on line 2",
    ]
    assert sorted(Subscription.objects.values_list("newsletter__slug", "frequency")) == [
        ("ops", "weekly"),
        ("weekly", "daily"),
    ]
    out, _ = run(tmp_path, text, "--confirmed")
    assert "0 updated; 0 subscriptions created, 0 updated; 2 unchanged" in out


def test_idn_and_punycode_forms_of_one_address_are_one_subscriber(tmp_path):
    out, err = run(
        tmp_path,
        HEADER + "ann@xn--bcher-kva.example,Ann,UTC,weekly,daily\nann@Bücher.example,Ann,UTC,ops,daily\n",
    )
    assert err == ""
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ann@bücher.example"]
    assert Subscription.objects.count() == 2
    _, err = run(tmp_path, HEADER + "ann@xn--zz.example,Ann,UTC,weekly,daily\n")
    assert "line 2: email" in err


def test_one_reader_enrolled_with_consent_follows_the_confirmed_imports_rules(newsletters):
    weekly, ops = newsletters
    gone = SubscriptionFactory(newsletter=ops, status=SubscriptionStatus.UNSUBSCRIBED).subscriber
    counts = subscriber_enrol(
        email=gone.email,
        name="Back",
        tz="Asia/Tokyo",
        choices={weekly.pk: "daily", ops.pk: "weekly"},
        now=timezone.now(),
    )
    assert counts["skipped_opted_out"] == 1  # ops: they left it; only their own confirmation brings them back
    assert Subscription.objects.get(subscriber=gone, newsletter=weekly).status == SubscriptionStatus.ACTIVE
    assert Subscription.objects.get(subscriber=gone, newsletter=ops).status == SubscriptionStatus.UNSUBSCRIBED
