"""Content-Security-Policy (Django's own): on every page, and nothing the pages need is refused by it.

Checked in Chromium: the browser reports each refusal on the console ("Refused to … because
it violates the following Content Security Policy directive").
"""

import re

import pytest
from django.utils import timezone

from tests.digest.test_browser_editors import log_in
from tests.factories import IssueFactory, NewsletterFactory
from tests.newsletters import test_browser

browser_page = test_browser.browser_page
ISSUE_BODY = (
    "## A picture and a table\n\n![The chart](https://example.com/chart.png)\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\nAnd a [link](https://example.com/).\n"
)


def _pages() -> list[str]:
    newsletter = NewsletterFactory(name="Weekly Notes", slug="weekly")
    issue = IssueFactory(newsletter=newsletter, slug="first", body=ISSUE_BODY, publish_at=timezone.now())
    return ["/", "/subscribe/", "/n/weekly/", issue.get_absolute_url(), "/admin/login/"]


@pytest.mark.django_db
def test_every_page_sends_the_policy_and_inline_scripts_carry_its_nonce(client):
    for url in _pages():
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "object-src 'none'" in policy and "base-uri 'none'" in policy
        assert re.search(r"script-src 'self'(;| 'nonce-)", policy)
        # A page with an inline script names its nonce in the policy (Django adds one only when used).
        for attributes in re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.content.decode()):
            [nonce] = re.findall(r'nonce="([^"]+)"', attributes)
            assert f"script-src 'self' 'nonce-{nonce}'" in policy, url


def _refusals(page) -> list[str]:
    refused = []
    page.on("console", lambda message: "Content Security Policy" in message.text and refused.append(message.text))
    return refused


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_public_pages_work_under_it_in_chromium(browser_page, live_server):
    page = browser_page
    refused = _refusals(page)
    for url in _pages()[:-1]:
        page.goto(f"{live_server.url}{url}")
    page.goto(f"{live_server.url}/subscribe/")
    # The inline script (with the nonce) ran: it chose the browser's time zone.
    assert page.get_by_label("Time zone").input_value() == "Europe/Paris"
    page.goto(f"{live_server.url}/n/weekly/first/")
    page.get_by_role("img", name="The chart").wait_for(state="attached")
    assert refused == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_live_preview_works_under_it_in_chromium(browser_page, live_server):
    page = browser_page
    refused = _refusals(page)
    NewsletterFactory(name="Weekly Notes", slug="weekly")
    log_in(page, live_server)
    page.set_viewport_size({"width": 1280, "height": 900})  # the preview beside the text (tabs below 1100 px)
    page.goto(f"{live_server.url}/admin/newsletters/issue/add/")
    page.get_by_label("Newsletter").select_option(label="Weekly Notes")
    page.get_by_label("Title").fill("Under a policy")
    page.get_by_label("Body").fill(ISSUE_BODY)
    frame = page.frame_locator("#live-preview iframe")
    frame.get_by_role("heading", name="A picture and a table").wait_for()
    frame.get_by_role("img", name="The chart").wait_for(state="attached")
    page.goto(f"{live_server.url}/admin/dashboard/")
    assert refused == []
