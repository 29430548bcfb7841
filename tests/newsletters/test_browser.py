"""The reader's journey in a real browser (Debian's Chromium, driven by Playwright) against a running server.

subscribe → open the confirmation link from the mail the SMTP server received → change
frequency → unsubscribe from a digest's link. Screenshots go to test-output/screenshots/.
"""

import datetime
import os
import re
import shutil
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from digest.run import digest_run
from newsletters.models import Subscription, SubscriptionStatus
from tests.factories import IssueFactory, NewsletterFactory

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(monkeypatch):
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; `make browser` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing; `make browser` installs it")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        context = browser.new_context(viewport={"width": 480, "height": 900}, timezone_id="Europe/Paris")
        page = context.new_page()
        yield page
        browser.close()
        # ORM calls made while Playwright's loop runs get connections of their own; close
        # them here, or PostgreSQL refuses to drop the test database.
        connections.close_all()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_reader_journey(browser_page, live_server, smtp_server, settings):
    page = browser_page
    settings.SITE_URL = live_server.url
    newsletter = NewsletterFactory(
        name="Django Weekly Notes", slug="django-weekly", description="Release notes and tips."
    )
    IssueFactory(
        newsletter=newsletter, title="Mailers in Django 6.1", body="## What changed\n\n- `MAILERS`\n- `using=`"
    )

    page.goto(f"{live_server.url}/subscribe/")
    assert page.locator("#id_timezone").input_value() == "Europe/Paris"  # detected in the browser
    page.get_by_label("Email address").fill("reader@example.com")
    page.get_by_label("Name (optional)").fill("Rea Der")
    page.get_by_role("checkbox", name="Django Weekly Notes").check()
    page.get_by_label("How often for Django Weekly Notes").select_option("daily")
    shot(page, "1-subscribe")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    shot(page, "2-check-inbox")

    [confirmation] = smtp_server.received
    text = confirmation.message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(http://\S+/confirm/\S+/)", text).group(1)
    page.goto(link)
    page.get_by_role("button", name="Yes, confirm my subscription").click()
    page.get_by_text("You're subscribed").wait_for()
    assert re.search(r"daily, next on \w+ \d+ \w+, 08:00 \(Europe/Paris\)", page.content())
    shot(page, "3-confirmed")

    subscription = Subscription.objects.get(subscriber__email="reader@example.com")
    page.locator(f"#id_freq_{subscription.pk}").select_option("immediate")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved.").wait_for()
    shot(page, "4-preferences")
    subscription.refresh_from_db()
    assert subscription.frequency == "immediate"

    summary = digest_run(now=timezone.now() + datetime.timedelta(minutes=2))
    assert summary.sent == 1
    digest = smtp_server.received[-1].message
    html = digest.get_body(preferencelist=("html",)).get_content()
    unsubscribe = re.search(r'href="([^"]+/u/[^"]+)"', html).group(1)
    assert digest["List-Unsubscribe"] == f"<{unsubscribe}>"
    page.goto(unsubscribe)
    page.get_by_role("heading", name="Unsubscribe from Django Weekly Notes?").wait_for()
    shot(page, "5-unsubscribe")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE  # opening the link changed nothing
    page.get_by_role("button", name="Unsubscribe", exact=True).click()
    page.get_by_role("heading", name="Unsubscribed").wait_for()
    shot(page, "6-unsubscribed")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED
