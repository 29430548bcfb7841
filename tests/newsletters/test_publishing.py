"""Publishing from the issue admin: a picker in the editor's time zone, and a confirmation naming the audience."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from newsletters.models import Frequency, Issue, IssueStatus, SubscriberStatus, SubscriptionStatus, Weekday
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def newsletter():
    newsletter = NewsletterFactory(name="Field Notes", send_time=datetime.time(8, 0), weekly_day=Weekday.TUESDAY)
    for frequency in [Frequency.DAILY, Frequency.DAILY, Frequency.WEEKLY, Frequency.IMMEDIATE]:
        SubscriptionFactory(newsletter=newsletter, frequency=frequency)
    # Not in the audience: an unsubscribed subscription, a suppressed reader, another newsletter.
    SubscriptionFactory(newsletter=newsletter, status=SubscriptionStatus.UNSUBSCRIBED)
    SubscriptionFactory(newsletter=newsletter, subscriber=SubscriberFactory(status=SubscriberStatus.SUPPRESSED))
    SubscriptionFactory()
    return newsletter


def _form(newsletter, **fields):
    return {
        "newsletter": newsletter.pk,
        "title": "Autovacuum",
        "slug": "autovacuum",
        "body": "Text",
        "status": "published",
        "publish_at": "",
        "publish_at_tz": "",
        "attachments-TOTAL_FORMS": "0",
        "attachments-INITIAL_FORMS": "0",
    } | fields


AUDIENCE = (
    "goes to <strong>4 readers</strong>:\n  1 immediate in the next digest run after it is out; "
    "2 daily at 08:00 their time; 1 weekly on Tuesday at 08:00 their time."
)


def test_publishing_from_the_form_waits_for_a_confirmation_that_names_the_audience(client, editor, newsletter):
    response = client.post(reverse("admin:newsletters_issue_add"), _form(newsletter), follow=True)
    issue = Issue.objects.get()
    assert response.redirect_chain == [(reverse("admin:newsletters_issue_publish", args=[issue.pk]), 302)]
    assert issue.status == IssueStatus.DRAFT  # nothing goes out before the confirmation
    page = response.content.decode()
    assert "Saved as a draft: check who gets it, then publish." in page
    assert AUDIENCE in page
    assert 'value="Publish now"' in page

    response = client.post(reverse("admin:newsletters_issue_publish", args=[issue.pk]))
    assert response["Location"] == reverse("admin:newsletters_issue_changelist")
    issue.refresh_from_db()
    assert issue.state == "published"
    # Already out: the page does not publish it again.
    response = client.post(reverse("admin:newsletters_issue_publish", args=[issue.pk]))
    assert response["Location"] == reverse("admin:newsletters_issue_change", args=[issue.pk])


def test_a_time_typed_in_words_is_read_in_the_editors_zone_and_scheduled(client, editor, newsletter):
    form = _form(newsletter, publish_at="Dec 3, 2030 9:00", publish_at_tz="America/New_York")
    response = client.post(reverse("admin:newsletters_issue_add"), form, follow=True)
    issue = Issue.objects.get()
    assert issue.publish_at == datetime.datetime(2030, 12, 3, 14, 0, tzinfo=datetime.UTC)
    page = response.content.decode()
    # In the editor's zone, which their browser posted, and in UTC.
    assert (
        "It is scheduled for <strong>Dec. 3, 2030, 9 a.m.</strong> in America/New_York (2030-12-03 14:00 UTC)" in page
    )
    assert 'value="Schedule it"' in page
    client.post(reverse("admin:newsletters_issue_publish", args=[issue.pk]))
    issue.refresh_from_db()
    assert issue.state == "scheduled" and issue.publish_at == datetime.datetime(2030, 12, 3, 14, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "text,zone,message",
    [
        ("next Tuesday", "UTC", "is not a date and time such as Dec 3, 2026 9:00"),
        ("Mar 10, 2030 2:30", "America/New_York", "does not exist in America/New_York"),
        ("2030-12-03T09:00", "Mars/Olympus_Mons", "is not a time zone"),
    ],
)
def test_a_time_that_cannot_be_read_is_refused_and_nothing_is_saved(client, editor, newsletter, text, zone, message):
    response = client.post(
        reverse("admin:newsletters_issue_add"), _form(newsletter, publish_at=text, publish_at_tz=zone)
    )
    assert response.status_code == 200 and message in response.content.decode()
    assert not Issue.objects.exists()


def test_the_picker_shows_a_stored_time_with_its_utc_value_for_the_browser(client, editor, newsletter):
    issue = IssueFactory(newsletter=newsletter, publish_at=datetime.datetime(2030, 12, 3, 14, 0, tzinfo=datetime.UTC))
    page = client.get(reverse("admin:newsletters_issue_change", args=[issue.pk])).content.decode()
    assert 'data-utc="2030-12-03T14:00:00Z"' in page
    assert 'type="datetime-local" name="publish_at" value="2030-12-03T14:00"' in page  # TIME_ZONE, until JS runs
    assert "newsletters/local-datetime.js" in page


def test_the_schedule_action_takes_the_pickers_value_in_the_editors_zone(client, editor, newsletter):
    issue = IssueFactory(newsletter=newsletter, status=IssueStatus.DRAFT, publish_at=None)
    url = reverse("admin:newsletters_issue_changelist")
    page = client.post(url, {"action": "schedule", "_selected_action": [issue.pk]}).content.decode()
    assert AUDIENCE in page
    client.post(
        url,
        {
            "action": "schedule",
            "_selected_action": [issue.pk],
            "publish_at": "2030-07-01T09:00",
            "publish_at_tz": "Europe/Paris",
        },
    )
    issue.refresh_from_db()
    assert issue.state == "scheduled" and issue.publish_at == datetime.datetime(2030, 7, 1, 7, 0, tzinfo=datetime.UTC)


def test_an_editor_without_change_rights_cannot_publish(client, newsletter):
    issue = IssueFactory(newsletter=newsletter, status=IssueStatus.DRAFT, publish_at=None)
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(viewer)
    assert client.post(reverse("admin:newsletters_issue_publish", args=[issue.pk])).status_code == 403
    issue.refresh_from_db()
    assert issue.status == IssueStatus.DRAFT
