"""The dashboard's digests per mailbox provider in a real browser (Chromium): readable on a phone and a desktop."""

import datetime

import pytest
from django.utils import timezone

from digest.models import Delivery, DeliveryStatus
from tests.digest.test_browser_editors import log_in
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.newsletters import test_browser
from tests.newsletters.test_browser import SHOTS

browser_page = test_browser.browser_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# (domain, readers, of whom deferred today): one provider throttling us today.
READERS = [("gmail.com", 14, 0), ("outlook.com", 9, 0), ("yahoo.com", 8, 5), ("example.org", 3, 0)]

LAYOUT = """() => {
    const table = document.querySelector('table[aria-labelledby=providers-heading]');
    return {page: document.documentElement.scrollWidth, viewport: window.innerWidth,
            table: table.scrollWidth, tableBox: table.clientWidth};
}"""


def seed() -> None:
    newsletter = NewsletterFactory(name="Django Weekly Notes")
    now = timezone.now()
    rows = []
    for domain, readers, deferred in READERS:
        for n in range(readers):
            subscription = SubscriptionFactory(
                newsletter=newsletter, subscriber=SubscriberFactory(email=f"reader{n}@{domain}")
            )
            for day in range(7):
                end = now - datetime.timedelta(days=day, minutes=5)
                today_deferred = day == 0 and n < deferred
                rows.append(
                    Delivery(
                        subscription=subscription,
                        newsletter=newsletter,
                        window_start=end - datetime.timedelta(days=1),
                        window_end=end,
                        status=DeliveryStatus.DEFERRED if today_deferred else DeliveryStatus.SENT,
                    )
                )
    Delivery.objects.bulk_create(rows)


def test_digests_per_provider_on_a_phone_and_a_desktop(browser_page, live_server):
    page = browser_page
    seed()
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/dashboard/")
    card = page.locator(".providers-card")
    card.get_by_role("heading", name="Digests per mailbox provider").wait_for()
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        yahoo = card.get_by_role("row").filter(has=page.get_by_role("rowheader", name="yahoo"))
        assert "5" in yahoo.get_by_role("cell").nth(1).inner_text()  # deferred today
        layout = page.evaluate(LAYOUT)
        assert layout["page"] <= layout["viewport"], (width, layout)  # no sideways scrolling
        assert layout["table"] <= layout["tableBox"], (width, layout)
        card.screenshot(path=str(SHOTS / f"26-dashboard-providers-{width}.png"))
    names = card.get_by_role("rowheader").all_inner_texts()
    assert names == ["google", "microsoft", "yahoo", "example.org"]
