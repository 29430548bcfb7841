"""The template gallery in Chromium: each template drawn with the newsletter's branding, at 1280 and 375 px.

Screenshots go to test-output/screenshots/gallery-1280.png and gallery-375.png."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.digest.rendering.test_clients import LOGO, branded
from tests.factories import IssueFactory, NewsletterFactory
from tests.newsletters import test_browser
from tests.newsletters.test_browser import shot

browser_page = test_browser.browser_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BODY = """The first paragraph, with **bold**, a [link](https://docs.example.com) and `code`.

## A section

- one
- two

> A quote.
"""


def test_the_gallery_draws_every_template_with_the_branding(browser_page, live_server, settings):
    page = browser_page
    settings.SITE_URL = live_server.url
    newsletter = NewsletterFactory(name="Weekly Notes", slug="weekly-notes")
    branded(newsletter, "magazine")
    IssueFactory(newsletter=newsletter, title="What mail clients do with your email", body=BODY)
    get_user_model().objects.create_superuser("editor", "editor@example.com", "editor-password")
    # The site serves uploads only in DEBUG (a production server serves MEDIA_ROOT itself).
    page.route("**/media/logos/**", lambda route: route.fulfill(body=LOGO, content_type="image/png"))
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("editor-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Dashboard", exact=True).first.wait_for()

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("admin:newsletters_newsletter_gallery", args=[newsletter.pk]))
    headings = page.locator(".gallery h2").all_inner_texts()
    assert headings == ["Default", "Magazine (in use)", "Plain"]
    assert page.locator(".gallery .layout-ok").count() == 3
    for index in range(3):
        frame = page.frame_locator(".gallery iframe").nth(index)
        frame.locator("img.logo").wait_for()
        assert frame.locator("img.logo").evaluate("(image) => image.complete && image.naturalWidth") == 400
        assert "our readers" in frame.locator("td.brand-header").inner_text()
    # A viewport as tall as the page: Chromium paints iframes below the first screen blank in a full-page shot.
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        page.set_viewport_size({"width": width, "height": page.evaluate("() => document.documentElement.scrollHeight")})
        shot(page, f"gallery-{width}")
