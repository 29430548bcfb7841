"""The admin's subscriber import: upload, preview with refused rows, invite or consent, the task and its progress."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.urls import reverse

from newsletters.models import (
    ImportMode,
    ImportStatus,
    Subscriber,
    SubscriberImport,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletters.privacy import subscriber_export
from newsletters.roles import EDITOR, OWNER
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

HEADER = "email,name,timezone,frequency\n"


def _member(client, group: str, username: str):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


@pytest.fixture
def owner(client):
    return _member(client, OWNER, "owner")


@pytest.fixture
def newsletter():
    return NewsletterFactory(slug="weekly", name="Weekly Notes")


def upload(client, newsletter, text: str | bytes, name: str = "readers.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        reverse("admin:newsletters_subscriberimport_add"),
        {"newsletter": newsletter.pk, "file": SimpleUploadedFile(name, data, content_type="text/csv")},
    )


def start(client, record: SubscriberImport, mode: str):
    return client.post(reverse("admin:newsletters_subscriberimport_start", args=[record.pk]), {"mode": mode})


def test_the_preview_names_refused_rows_and_changes_nothing(client, owner, newsletter):
    existing = SubscriptionFactory(newsletter=newsletter, subscriber__email="old@example.com", subscriber__name="Old")
    response = upload(
        client,
        newsletter,
        HEADER + "ada@example.com,Ada,Europe/London,daily\n"
        "not-an-address,Bob,,\n"
        "old@example.com,New Name,Mars/Olympus,\n"
        "grace@example.com,Grace,,weekly,extra\n"
        "ops@example.com,,,\n",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "line 3: email &#x27;not-an-address&#x27;" in page
    assert "line 4: timezone" in page
    assert "line 5: more fields than the header has columns" in page
    assert "ada@example.com" in page and "ops@example.com" in page  # the first good rows
    assert "<strong>2</strong> can be imported" in page
    assert list(Subscriber.objects.values_list("email", "name")) == [("old@example.com", "Old")]
    assert list(Subscription.objects.all()) == [existing]
    [record] = SubscriberImport.objects.all()
    assert record.status == ImportStatus.PREVIEW and record.rows_total == 2


def test_a_file_that_cannot_be_read_is_refused_whole(client, owner, newsletter):
    response = upload(client, newsletter, b"email\nada@example.com\nb\xe9b@example.com\n")
    assert response.status_code == 200
    assert "line 3 is not UTF-8 (byte 0xe9)" in response.content.decode()
    response = upload(client, newsletter, "name,timezone\nAda,UTC\n")
    assert "The CSV header lacks email" in response.content.decode()
    assert not SubscriberImport.objects.exists() and not Subscriber.objects.exists()


def test_a_row_for_another_newsletter_is_refused(client, owner, newsletter):
    NewsletterFactory(slug="ops")
    response = upload(client, newsletter, "email,newsletter\nada@example.com,ops\ngrace@example.com,weekly\n")
    assert "line 2: this import is for &#x27;weekly&#x27;, not &#x27;ops&#x27;" in response.content.decode()


def test_consent_activates_and_records_who_when_and_which_file(client, owner, newsletter):
    SubscriberFactory(email="gone@example.com", status=SubscriberStatus.UNSUBSCRIBED)
    upload(client, newsletter, HEADER + "ada@example.com,Ada,Europe/London,daily\ngone@example.com,,,\nbad,,,\n")
    record = SubscriberImport.objects.get()
    response = start(client, record, ImportMode.CONSENT)
    assert response.url == reverse("admin:newsletters_subscriberimport_progress", args=[record.pk])

    record.refresh_from_db()
    assert record.status == ImportStatus.DONE
    assert (record.mode, record.imported_by, record.imported_by_name) == (ImportMode.CONSENT, owner, "owner")
    assert record.file_name == "readers.csv" and record.created_at is not None
    assert record.rows_done == record.rows_total == 2 and record.text == ""
    ada = Subscriber.objects.get(email="ada@example.com")
    assert ada.status == SubscriberStatus.ACTIVE
    subscription = ada.subscriptions.get()
    assert (subscription.status, subscription.frequency, subscription.subscriber_import) == (
        SubscriptionStatus.ACTIVE,
        "daily",
        record,
    )
    assert Subscriber.objects.get(email="gone@example.com").status == SubscriberStatus.UNSUBSCRIBED
    # The reader's own download says where the subscription came from.
    [exported] = subscriber_export(subscriber=ada)["subscriptions"]
    assert exported["imported"] == {
        "file": "readers.csv",
        "by": "owner",
        "at": record.created_at,
        "grounds": "I have their consent",
    }

    page = client.get(response.url).content.decode()
    assert 'http-equiv="refresh"' not in page  # done: the page stops reloading
    for label, count in [("New readers", 1), ("New subscriptions", 1), ("Skipped: unsubscribed or suppressed", 1)]:
        assert f'<th scope="row">{label}</th><td class="count">{count}</td>' in page
    assert '<th scope="row">Errors: rows refused</th><td class="count">1</td>' in page
    assert "line 4: email" in page


def test_an_import_starts_once(client, owner, newsletter):
    upload(client, newsletter, HEADER + "ada@example.com,Ada,,\n")
    record = SubscriberImport.objects.get()
    start(client, record, ImportMode.CONSENT)
    start(client, record, ImportMode.INVITE)  # a second click, with the other choice
    record.refresh_from_db()
    assert record.mode == ImportMode.CONSENT and record.counts["subscriptions_created"] == 1


def test_a_start_without_a_choice_starts_nothing(client, owner, newsletter):
    upload(client, newsletter, HEADER + "ada@example.com,Ada,,\n")
    record = SubscriberImport.objects.get()
    start(client, record, "")
    assert SubscriberImport.objects.get().status == ImportStatus.PREVIEW
    assert not Subscriber.objects.exists()


def test_the_progress_page_reloads_while_the_import_runs(client, owner, newsletter):
    upload(client, newsletter, HEADER + "ada@example.com,Ada,,\n")
    record = SubscriberImport.objects.get()
    SubscriberImport.objects.filter(pk=record.pk).update(status=ImportStatus.RUNNING, rows_total=4000, rows_done=1000)
    page = client.get(reverse("admin:newsletters_subscriberimport_progress", args=[record.pk])).content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "1000 of 4000 rows written (25 %)" in page
    assert '<progress id="import-progress" max="4000" value="1000">' in page


def test_editors_may_not_import(client, newsletter):
    _member(client, EDITOR, "editor")
    assert client.get(reverse("admin:newsletters_subscriberimport_add")).status_code == 403
    assert upload(client, newsletter, HEADER + "ada@example.com,Ada,,\n").status_code == 403
    assert not Subscriber.objects.exists() and not SubscriberImport.objects.exists()


def test_previews_never_started_are_dropped_after_a_day(client, owner, newsletter):
    upload(client, newsletter, HEADER + "ada@example.com,Ada,,\n")
    SubscriberImport.objects.update(created_at=F("created_at") - datetime.timedelta(days=2))
    upload(client, newsletter, HEADER + "grace@example.com,Grace,,\n")
    assert list(SubscriberImport.objects.values_list("text", flat=True)) == [HEADER + "grace@example.com,Grace,,\n"]
