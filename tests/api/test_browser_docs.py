"""The API docs in Chromium: Swagger UI from this site alone (no CDN, no CSP violation), and a call made from it."""

from pathlib import Path

import pytest
from django.db import connections

from api.tokens import token_create
from tests.factories import NewsletterFactory

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_call_the_api_with_a_token(chromium, live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    NewsletterFactory(name="Weekly Notes")
    _, raw = token_create(name="docs-browser", scopes=["read"])
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    elsewhere, problems = [], []
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith(live_server.url) else None)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{live_server.url}/api/v1/docs")
        page.click("button.authorize")
        page.fill(".auth-container input", raw)
        page.click(".auth-btn-wrapper button.authorize")
        page.click("button.btn-done")
        operation = page.locator("#operations-newsletters-api_endpoints_newsletters_newsletter_list")
        operation.locator(".opblock-summary").click()
        page.click("button.try-out__btn")
        page.click("button.execute")
        page.wait_for_selector(".live-responses-table .response-col_status")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".live-responses-table").screenshot(path=str(SHOTS / "api-docs-call.png"))
        status = page.inner_text(".live-responses-table .response .response-col_status").strip()
        body = page.inner_text(".live-responses-table")
    finally:
        page.close()
        connections.close_all()  # the live server's connections, or PostgreSQL keeps the test database
    assert status == "200" and "Weekly Notes" in body
    assert elsewhere == [] and problems == []
