"""Scheduling in a real browser (Chromium): the picker works in the browser's time zone and says the UTC time."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from newsletters.models import Frequency, Issue
from tests.factories import NewsletterFactory, SubscriptionFactory
from tests.newsletters.test_browser import SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def new_york_page(chromium, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York")
    yield context.new_page()
    context.close()
    connections.close_all()


def test_an_editor_in_new_york_schedules_at_nine_their_time(new_york_page, live_server):
    page = new_york_page
    newsletter = NewsletterFactory(name="Field Notes")
    for frequency in [Frequency.DAILY, Frequency.WEEKLY]:
        SubscriptionFactory(newsletter=newsletter, frequency=frequency)
    get_user_model().objects.create_superuser("editor", "editor@example.com", "editor-password")
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("editor-password")
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/admin/newsletters/issue/add/")
    page.get_by_label("Newsletter").select_option(label="Field Notes")
    page.get_by_label("Title").fill("Autovacuum")
    page.get_by_label("Body").fill("Dead tuples pile up.")
    page.get_by_label("Status").select_option("published")
    assert page.locator('input[name="publish_at_tz"]').input_value() == "America/New_York"
    page.get_by_label("Publish at").fill("2030-12-03T09:00")
    utc = page.locator("output.local-datetime-utc")
    assert utc.inner_text() == "= 2030-12-03 14:00 UTC"
    page.locator(".local-datetime").screenshot(path=str(SHOTS / "publish-at-picker.png"))
    page.get_by_role("button", name="Save", exact=True).click()

    page.get_by_text("goes to 2 readers").wait_for()
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"13-publish-confirm-{width}.png"), full_page=True)
    page.get_by_role("button", name="Schedule it").click()
    page.get_by_text("Scheduled “Autovacuum”").wait_for()
    assert Issue.objects.get().publish_at == datetime.datetime(2030, 12, 3, 14, 0, tzinfo=datetime.UTC)

    # Opened again, the stored time shows in the editor's zone.
    page.goto(f"{live_server.url}/admin/newsletters/issue/{Issue.objects.get().pk}/change/")
    assert page.get_by_label("Publish at").input_value() == "2030-12-03T09:00"
    assert utc.inner_text() == "= 2030-12-03 14:00 UTC"
