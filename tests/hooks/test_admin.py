"""The admin: an endpoint's secret shown once, the delivery log with replay, pause and resume."""

import re

import pytest
from django.contrib.auth import get_user_model

from hooks.models import Endpoint, Event, EventStatus, EventType
from hooks.outbox import events_record
from tests.factories import NewsletterFactory
from tests.hooks.conftest import T0, endpoint_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_an_endpoint_made_in_the_admin_shows_its_secret_once(client, editor):
    newsletter = NewsletterFactory()
    response = client.post(
        "/admin/hooks/endpoint/add/",
        {
            "newsletter": newsletter.pk,
            "url": "https://crm.example.com/hooks",
            "events": ["issue.published", "complaint"],
        },
        follow=True,
    )
    endpoint = Endpoint.objects.get()
    assert endpoint.events == ["issue.published", "complaint"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", endpoint.secret)
    assert endpoint.secret in response.content.decode()
    change = client.get(f"/admin/hooks/endpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in change and "shown once when made" in change

    client.post("/admin/hooks/endpoint/", {"action": "rotate_secret", "_selected_action": [endpoint.pk]}, follow=True)
    rotated = Endpoint.objects.get().secret
    assert rotated != endpoint.secret


def test_the_admin_refuses_a_private_url_and_changes_nothing(client, editor, settings):
    settings.HOOKS_ALLOW_PRIVATE = 0
    response = client.post(
        "/admin/hooks/endpoint/add/",
        {"newsletter": NewsletterFactory().pk, "url": "http://169.254.169.254/latest/", "events": ["complaint"]},
    )
    assert response.status_code == 200 and "non-public address" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_replay_from_the_delivery_log_delivers_again_at_once(client, editor, receiver):
    endpoint = endpoint_make(url=receiver.url)
    [event] = events_record(type=EventType.COMPLAINT, data={}, key="subscriber:1", now=T0, newsletter_ids=None)
    Event.objects.filter(pk=event.pk).update(status=EventStatus.DELIVERED)  # delivered long ago
    page = client.get("/admin/hooks/event/").content.decode()
    assert "complaint" in page and "subscriber:1" in page
    response = client.post("/admin/hooks/event/", {"action": "replay", "_selected_action": [event.pk]}, follow=True)
    assert "1 event(s) queued again" in response.content.decode()
    assert receiver.ids() == [event.webhook_id]  # tasks run inline here: sent during the action
    detail = client.get(f"/admin/hooks/event/{event.pk}/change/").content.decode()
    assert "204" in detail and event.webhook_id in detail and "_save" not in detail  # a log, not a form
    assert endpoint.outbox.get().status == EventStatus.DELIVERED


def test_pause_keeps_events_and_resume_sends_them(client, editor, receiver, smtp_server):
    endpoint = endpoint_make(url=receiver.url)
    client.post("/admin/hooks/endpoint/", {"action": "pause", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.paused_at and endpoint.pause_reason == "paused by editor"
    assert not smtp_server.received  # whoever paused it knows
    events_record(type=EventType.COMPLAINT, data={}, key="subscriber:1", now=T0, newsletter_ids=None)
    assert "paused by editor" in client.get("/admin/hooks/endpoint/").content.decode()
    client.post("/admin/hooks/endpoint/", {"action": "resume", "_selected_action": [endpoint.pk]})
    assert len(receiver.ids()) == 1
    assert not Endpoint.objects.get().paused_at
