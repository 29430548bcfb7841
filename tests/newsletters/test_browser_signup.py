"""Signup in Chromium: the embedded form on another site, the challenge solved by the page's script,
the subscribe box on issue and archive pages, checked with axe-core at 375 and 1280 px.

Screenshots go to test-output/screenshots/.
"""

import http.server
import re
import threading
from functools import partial

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connections
from django.utils import timezone

from newsletters.embed import embed_snippet
from newsletters.models import SignupRefusal
from newsletters.tokens import preferences_url, unsubscribe_url
from tests.factories import IssueFactory, NewsletterFactory, SubscriptionFactory
from tests.newsletters.test_browser import SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = (375, 1280)


class _Blog(http.server.BaseHTTPRequestHandler):
    """Another site: one page carrying a publisher's snippet, and a thank-you page."""

    def __init__(self, *args, page: str, **kwargs):
        self.page = page
        super().__init__(*args, **kwargs)

    def do_GET(self):
        body = self.page if self.path == "/" else "<!doctype html><title>Thanks</title><h1>Thanks from the blog</h1>"
        data = f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A blog</title></head><body><main><h1>A blog post</h1>{body}</main></body></html>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def browser(chromium, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield chromium
    connections.close_all()


@pytest.fixture
def site(live_server, settings):
    cache.clear()
    settings.SITE_URL = live_server.url
    settings.NEWSLETTERS_CHALLENGE = "always"
    settings.NEWSLETTERS_CHALLENGE_MAX_NUMBER = 20_000
    return live_server


def blog_serving(page_html: str):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Blog, page=page_html))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serious(page) -> list[str]:
    """axe-core's critical and serious violations on the page, one line each."""
    return serious_in(page, None)


def serious_in(page, context: str | None) -> list[str]:
    """axe-core's critical and serious violations within `context` (a CSS selector; None: the page)."""
    results = Axe().run(page, context=context)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("critical", "serious")
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_embedded_form_subscribes_from_another_site_inline_and_without_script(
    browser, site, smtp_server, settings, width
):
    newsletter = NewsletterFactory(name="Weekly Notes", slug="weekly")
    blog = blog_serving("")
    origin = f"http://127.0.0.1:{blog.server_address[1]}"
    newsletter.embed_origins = origin
    newsletter.save()
    blog.RequestHandlerClass = partial(_Blog, page=embed_snippet(newsletter))
    try:
        context = browser.new_context(viewport={"width": width, "height": 800}, timezone_id="Asia/Tokyo")
        page = context.new_page()
        page.goto(origin + "/")
        assert serious(page) == []
        page.get_by_label("Email address").fill("ada@example.org")
        page.get_by_role("button", name="Subscribe to Weekly Notes").click()
        page.get_by_text("Almost done: we sent you a link").wait_for()
        page.screenshot(path=str(SHOTS / f"embed-inline-{width}.png"), full_page=True)
        [mail] = smtp_server.received
        assert mail.recipients == ["ada@example.org"]
        assert "Weekly Notes (weekly)" in mail.message.get_body(("plain",)).get_content()

        # A burst that begins after the page asked whether to solve: the script is told, solves, sends again.
        settings.NEWSLETTERS_CHALLENGE = "never"
        page.reload()
        page.get_by_label("Email address").fill("cy@example.org")  # the page asks: no challenge now
        page.wait_for_load_state("networkidle")
        settings.NEWSLETTERS_CHALLENGE = "always"
        page.get_by_role("button", name="Subscribe to Weekly Notes").click()
        page.get_by_text("Almost done: we sent you a link").wait_for()
        assert smtp_server.received[-1].recipients == ["cy@example.org"]
        assert SignupRefusal.objects.get(reason="challenge").count == 1

        # Without the script the form still works: under the challenge, a page of this site asks
        # for it (test_the_challenge_page_is_solved_by_its_script); without it, back to the blog.
        plain = browser.new_context(viewport={"width": width, "height": 800}, java_script_enabled=False).new_page()
        plain.goto(origin + "/")
        plain.get_by_label("Email address").fill("bob@example.org")
        plain.get_by_role("button", name="Subscribe to Weekly Notes").click()
        plain.get_by_role("heading", name="One more step").wait_for()
        assert SignupRefusal.objects.get(reason="challenge").count == 2
        assert len(smtp_server.received) == 2
        settings.NEWSLETTERS_CHALLENGE = "never"
        plain.goto(origin + "/")
        plain.get_by_label("Email address").fill("bob@example.org")
        plain.get_by_role("button", name="Subscribe to Weekly Notes").click()
        plain.wait_for_url(origin + "/")
        assert smtp_server.received[-1].recipients == ["bob@example.org"]
        context.close()
    finally:
        blog.shutdown()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_challenge_page_is_solved_by_its_script(browser, site, smtp_server, width):
    NewsletterFactory(name="Weekly Notes", slug="weekly")
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    page.goto(site.url + "/n/weekly/")
    page.evaluate("document.querySelector('input[name=altcha]').removeAttribute('name')")  # as without the script
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="One more step").wait_for()
    assert serious(page) == []
    page.screenshot(path=str(SHOTS / f"challenge-{width}.png"), full_page=True)
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert [m.recipients for m in smtp_server.received] == [["ada@example.org"]]


@pytest.mark.parametrize("width", WIDTHS)
def test_issue_archive_and_subscribe_pages_pass_axe_and_fit(browser, site, smtp_server, width):
    newsletter = NewsletterFactory(name="Django Weekly Notes", slug="django-weekly", description="Release notes.")
    IssueFactory(newsletter=newsletter, slug="mailers", title="Mailers in Django 6.1", body="## What changed\n\nMuch.")
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    for path, name in [
        ("/n/django-weekly/mailers/", "issue"),
        ("/n/django-weekly/", "archive"),
        ("/subscribe/", "subscribe"),
    ]:
        page.goto(site.url + path)
        assert serious(page) == [], path
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        page.screenshot(path=str(SHOTS / f"growth-{name}-{width}.png"), full_page=True)
    page.goto(site.url + "/n/django-weekly/mailers/")
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert [m.recipients for m in smtp_server.received] == [["ada@example.org"]]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_unsubscribed_page_offers_undo_and_the_other_newsletters(browser, site, width):
    subscription = SubscriptionFactory(newsletter=NewsletterFactory(name="Django Weekly Notes"))
    NewsletterFactory(name="Ops Notes", description="Deploys, incidents and what we learned from them.")
    NewsletterFactory(name="Release Radar", description="Every release, in one line each.")
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    page.goto(unsubscribe_url(subscription.pk))
    page.get_by_role("button", name="Unsubscribe").first.click()
    page.get_by_role("heading", name="Unsubscribed").wait_for()
    assert serious(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(SHOTS / f"unsubscribed-undo-{width}.png"), full_page=True)
    page.get_by_role("button", name="Undo: subscribe me again").click()
    page.get_by_role("heading", name="Welcome back").wait_for()
    subscription.refresh_from_db()
    assert subscription.status == "active"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_preferences_page_offers_the_reader_their_data(browser, site, smtp_server, width):
    subscription = SubscriptionFactory(newsletter=NewsletterFactory(name="Django Weekly Notes"))
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    page.goto(preferences_url(subscription.subscriber_id))
    assert serious(page) == []
    page.get_by_role("heading", name="Your data").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"preferences-data-{width}.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download everything we hold about you").click()
    assert subscription.subscriber.email in download.value.path().read_text()
    page.get_by_role("button", name="Delete my data").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    link = re.search(r"(http://\S+/delete/\S+/)", smtp_server.received[-1].message.get_body(("plain",)).get_content())
    page.goto(link.group(1))
    assert serious(page) == []
    page.screenshot(path=str(SHOTS / f"erase-confirm-{width}.png"), full_page=True)
    page.get_by_role("button", name="Delete my data").click()
    page.get_by_role("heading", name="Deleted").wait_for()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dashboard_card_of_refusals(browser, site, width):
    SignupRefusal.objects.create(day=timezone.localdate(), reason="challenge", count=980)
    SignupRefusal.objects.create(day=timezone.localdate(), reason="disposable", count=4)
    User.objects.create_superuser("editor", "e@example.com", "pw")
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(site.url + "/admin/login/?next=/admin/dashboard/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    card = page.locator("#signup-card")
    card.wait_for()
    assert serious_in(page, "#signup-card") == []
    card.screenshot(path=str(SHOTS / f"dashboard-signup-card-{width}.png"))
    assert "984" in card.inner_text()
