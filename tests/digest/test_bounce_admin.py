"""Editors see bounces and complaints: counts per subscriber and per issue, the history, lifting a suppression."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from digest.models import BounceEvent, BounceKind
from digest.returns.policy import Report, bounce_record, fingerprint_of
from newsletters.models import Subscriber, SubscriberStatus
from tests.digest.returns.mail import WINDOW_END, sent_delivery
from tests.factories import IssueFactory

pytestmark = pytest.mark.django_db
NOW = WINDOW_END + datetime.timedelta(hours=1)


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def _event(delivery, kind, n=0):
    report = Report(
        kind=kind, source="imap", occurred_at=NOW, fingerprint=fingerprint_of(kind, n), diagnostic=f"{kind} #{n}"
    )
    return bounce_record(report=report, subscriber=delivery.subscription.subscriber, delivery=delivery, now=NOW)


def _cells(page: str, email: str) -> list[str]:
    row = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(email)}(?:(?!</tr>).)*</tr>", page, re.S).group(0)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]


def test_the_subscriber_list_counts_bounces_and_complaints(client, editor):
    ada, bob = sent_delivery("ada@example.com"), sent_delivery("bob@example.com")
    _event(ada, BounceKind.SOFT, 1)
    _event(ada, BounceKind.HARD, 2)
    _event(bob, BounceKind.COMPLAINT, 3)
    page = client.get(reverse("admin:newsletters_subscriber_changelist")).content.decode()
    assert _cells(page, "ada@example.com")[4:6] == ["2", "0"]
    assert _cells(page, "bob@example.com")[4:6] == ["0", "1"]


def test_the_subscriber_page_shows_the_history(client, editor):
    ada = sent_delivery("ada@example.com")
    _event(ada, BounceKind.HARD, 1)
    page = client.get(
        reverse("admin:newsletters_subscriber_change", args=[ada.subscription.subscriber_id])
    ).content.decode()
    assert "Bounces and complaints (history)" in page and "hard #1" in page


def test_an_editor_lifts_a_suppression_and_it_is_recorded(client, editor):
    ada, bob = sent_delivery("ada@example.com"), sent_delivery("bob@example.com")
    _event(ada, BounceKind.HARD)
    response = client.post(
        reverse("admin:newsletters_subscriber_changelist"),
        {
            "action": "lift_suppression",
            "_selected_action": [ada.subscription.subscriber_id, bob.subscription.subscriber_id],
        },
        follow=True,
    )
    page = response.content.decode()
    assert "1 subscriber(s) will get digests again" in page and "1 skipped: not suppressed" in page
    assert Subscriber.objects.get(email="ada@example.com").status == SubscriberStatus.ACTIVE
    assert BounceEvent.objects.get(kind=BounceKind.LIFTED).diagnostic == "lifted by editor"


def test_the_issue_list_counts_what_came_back_from_the_digests_that_carried_it(client, editor):
    ada = sent_delivery("ada@example.com")
    carried = IssueFactory(
        newsletter=ada.newsletter, title="Carried", publish_at=WINDOW_END - datetime.timedelta(hours=2)
    )
    IssueFactory(newsletter=ada.newsletter, title="Later", publish_at=WINDOW_END + datetime.timedelta(hours=2))
    IssueFactory(newsletter=ada.newsletter, title="Draft", status="draft", publish_at=WINDOW_END)
    _event(ada, BounceKind.HARD, 1)
    _event(sent_delivery("bob@example.com", newsletter=ada.newsletter), BounceKind.COMPLAINT, 2)
    page = client.get(reverse("admin:newsletters_issue_changelist")).content.decode()
    assert _cells(page, "Carried")[4:6] == ["1", "1"]
    assert _cells(page, "Later")[4:6] == ["0", "0"]
    assert _cells(page, "Draft")[4:6] == ["–", "–"]  # in no digest
    events = client.get(reverse("admin:digest_bounceevent_changelist") + f"?issue={carried.pk}").content.decode()
    assert "hard #1" in events and "complaint #2" in events


def test_the_event_list_is_read_only_and_for_staff(client, editor):
    _event(sent_delivery("ada@example.com"), BounceKind.SOFT)
    event = BounceEvent.objects.get()
    assert client.get(reverse("admin:digest_bounceevent_change", args=[event.pk])).status_code == 200
    assert client.get(reverse("admin:digest_bounceevent_add")).status_code == 403
    client.logout()
    response = client.get(reverse("admin:digest_bounceevent_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
