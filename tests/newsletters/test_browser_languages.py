"""Reader pages and a digest in each shipped language, in Chromium: Arabic mirrored right to left.

The browser's locale is its Accept-Language. Screenshots go to test-output/screenshots/
(20-…; the docs keep copies in docs/screenshots/).
"""

import os
import shutil

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from digest.rendering.content import Personal, digest_render
from newsletters.models import Subscriber
from newsletters.tokens import preferences_url
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.newsletters.test_browser import CHROMIUM, SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LANGUAGES = [code for code, _name in settings.LANGUAGES]
# Arabic at a phone's width (where a mirrored layout goes wrong first), the others on a desktop.
WIDTHS = {"ar": 375}


@pytest.fixture
def playwright_browser(monkeypatch):
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; `make browser` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing; `make browser` installs it")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()
        connections.close_all()


def _right_gap(page, selector: str) -> tuple[float, float]:
    """How far an element's text starts from its box's left edge and ends from its right one."""
    return page.evaluate(
        """(selector) => { const element = document.querySelector(selector);
               const range = document.createRange(); range.selectNodeContents(element);
               const text = range.getBoundingClientRect(), box = element.getBoundingClientRect();
               return [text.left - box.left, box.right - text.right]; }""",
        selector,
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_subscribe_preferences_and_digest_in_each_language(playwright_browser, live_server, settings, language):
    settings.SITE_URL = live_server.url
    newsletter = NewsletterFactory(name="Weekly Notes", slug="weekly", description="Notes from the week.")
    NewsletterFactory(name="Release News", slug="releases")
    subscriber = SubscriberFactory(email="reader@example.com", name="Rea", timezone="Europe/Paris", language=language)
    SubscriptionFactory(subscriber=subscriber, newsletter=newsletter, frequency="weekly")
    issue = IssueFactory(
        newsletter=newsletter,
        title="Week 23",
        publish_at=timezone.now() - timezone.timedelta(hours=2),
        body="## What happened\n\nThe notes of the week, as their editor wrote them.\n\n- one\n- two",
    )
    width = WIDTHS.get(language, 1280)
    context = playwright_browser.new_context(
        viewport={"width": width, "height": 900}, locale=language, timezone_id="Europe/Paris"
    )
    page = context.new_page()
    rtl = language == "ar"

    page.goto(f"{live_server.url}/subscribe/")
    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("html").get_attribute("dir") == ("rtl" if rtl else "ltr")
    start, end = _right_gap(page, "main h1")
    assert (end < start) if rtl else (start < end)  # the heading hugs the start side of its line
    assert page.evaluate("document.documentElement.scrollWidth") == width  # nothing off the side widens it
    page.screenshot(path=str(SHOTS / f"20-subscribe-{language}.png"), full_page=True)

    page.goto(preferences_url(subscriber.pk))
    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("#id_language").input_value() == language
    page.screenshot(path=str(SHOTS / f"20-preferences-{language}.png"), full_page=True)

    rendered = digest_render(
        newsletter=newsletter,
        issues=[issue],
        window_start=issue.publish_at - timezone.timedelta(days=7),
        window_end=issue.publish_at,
        language=language,
    )
    _text, html = rendered.personalize(
        Personal(
            name="Rea",
            email=subscriber.email,
            unsubscribe_url=f"{live_server.url}/u/x/",
            preferences_url=preferences_url(subscriber.pk),
            language=language,
        )
    )
    mail = context.new_page()
    mail.set_viewport_size({"width": WIDTHS.get(language, 800), "height": 900})
    mail.set_content(html)
    assert mail.locator("html").get_attribute("dir") == ("rtl" if rtl else "ltr")
    start, end = _right_gap(mail, ".greeting p")
    assert (end < start) if rtl else (start < end)
    mail.screenshot(path=str(SHOTS / f"20-digest-{language}.png"), full_page=True)
    context.close()
    assert Subscriber.objects.get().language == language
