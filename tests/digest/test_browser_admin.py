"""The admin as editors use it, in Chromium at 1280 px: axe-core finds no critical or serious
violation on any page an editor opens, every change list fits beside the navigation and the
filters without scrolling sideways, and the dashboard's charts read on the dark theme.

Screenshots (23-…) go to test-output/screenshots/.
"""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.utils import timezone

from api.models import ApiToken
from digest.models import BounceEvent, Delivery, DeliveryStatus
from feeds.models import Feed
from hooks.models import Endpoint
from newsletters.models import Attachment, Subscriber
from newsletters.roles import EDITOR
from tests.digest.test_browser_editors import seed_desk
from tests.factories import roles_make
from tests.newsletters import test_browser
from tests.newsletters.test_browser import SHOTS
from tests.newsletters.test_browser_signup import serious

browser_page = test_browser.browser_page  # the reader journey's Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SMTP_ERROR = (
    "550 5.1.1 <ada.lovelace.long.address@mail.example.org>: Recipient address rejected: "
    "User unknown in virtual mailbox table (in reply to RCPT TO command)"
)
# Where a change list's table ends, against the box it sits in and the window.
LIST_FIT = """() => {
    const table = document.querySelector('#result_list');
    const last = table.querySelector('thead th:last-child').getBoundingClientRect();
    return {
        table: table.scrollWidth, box: table.parentElement.clientWidth,
        page: document.documentElement.scrollWidth, viewport: window.innerWidth,
        lastColumnEnd: Math.round(last.right),
        headers: [...table.querySelectorAll('thead th')].map(th => th.innerText.trim()).filter(Boolean),
    };
}"""


def seed_admin() -> dict:
    """The desk's newsletter and digests, plus what the other lists hold: a failed delivery with a
    long SMTP error, bounces, a suppressed reader, a file on an issue, a feed, a token, an endpoint."""
    newsletter, issue = seed_desk()
    failed = Delivery.objects.filter(status=DeliveryStatus.FAILED).select_related("subscription__subscriber").first()
    Delivery.objects.filter(pk=failed.pk).update(last_error=SMTP_ERROR, attempts=3)
    subscriber = failed.subscription.subscriber
    Subscriber.objects.filter(pk=subscriber.pk).update(status="suppressed")
    for n, (kind, action) in enumerate([("hard", "suppressed"), ("soft", "counted"), ("complaint", "unsubscribed")]):
        BounceEvent.objects.create(
            subscriber=subscriber,
            delivery=failed,
            kind=kind,
            action=action,
            source="dsn",
            occurred_at=timezone.now() - datetime.timedelta(hours=n),
            status="5.1.1",
            diagnostic=SMTP_ERROR,
            score=1.0,
            fingerprint=f"seed-{n}",
        )
    Attachment.objects.create(issue=issue, file=ContentFile(b"%PDF-1.4\n", name="slides.pdf"), display_name="Slides")
    Feed.objects.create(newsletter=newsletter, url="https://blog.example.org/a/rather/long/path/to/the/feed.xml")
    ApiToken.objects.create(name="CRM sync", prefix="dgst_abc123", secret_hash="0" * 64, scopes=["read"])
    Endpoint.objects.create(
        newsletter=newsletter, url="https://hooks.example.org/digest", events=["issue.published"], secret="s" * 32
    )
    draft = issue.__class__.objects.create(newsletter=newsletter, title="Next week", slug="next-week", body="Soon.")
    return {"newsletter": newsletter, "issue": issue, "draft": draft, "subscriber": subscriber, "delivery": failed}


def log_in(page, live_server, *, editor: bool) -> None:
    users = get_user_model().objects
    if editor:
        user = users.create_user("editor", "editor@example.com", "editor-password", is_staff=True)
        roles_make()  # the group the migration made: a transactional test's flush dropped it
        user.groups.add(Group.objects.get(name=EDITOR))
    else:
        users.create_superuser("editor", "editor@example.com", "editor-password")
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("editor-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Dashboard", exact=True).first.wait_for()


def editor_pages(seed: dict) -> list[str]:
    issue, draft, newsletter = seed["issue"].pk, seed["draft"].pk, seed["newsletter"].pk
    return [
        "/admin/",
        "/admin/dashboard/",
        f"/admin/dashboard/?newsletter={newsletter}",
        "/admin/newsletters/issue/",
        "/admin/newsletters/issue/add/",
        f"/admin/newsletters/issue/{issue}/change/",  # its file in an inline row
        f"/admin/newsletters/issue/{issue}/email/",  # with the test send form
        f"/admin/newsletters/issue/{issue}/report/",
        f"/admin/newsletters/issue/{issue}/preview/",
        f"/admin/newsletters/issue/{draft}/report/",  # who gets it and when
        "/admin/newsletters/newsletter/",
        f"/admin/newsletters/newsletter/{newsletter}/change/",
        f"/admin/newsletters/newsletter/{newsletter}/next-digest/",
        "/admin/digest/delivery/",
        f"/admin/digest/delivery/{seed['delivery'].pk}/change/",
        "/admin/digest/bounceevent/",
        f"/admin/digest/bounceevent/?issue={issue}&kind__in=hard,soft",
        "/admin/newsletters/subscriber/",
        f"/admin/newsletters/subscriber/{seed['subscriber'].pk}/change/",  # subscriptions and bounces inline
        "/admin/newsletters/subscription/",
        "/admin/feeds/feed/",
        "/admin/deliverability/",
    ]


# Pages of the owner's and the operator's (a superuser's): the same checks.
OTHER_PAGES = [
    "/admin/feeds/feed/add/",
    "/admin/api/apitoken/",
    "/admin/api/apitoken/add/",
    "/admin/hooks/endpoint/",
    "/admin/hooks/endpoint/add/",
    "/admin/hooks/event/",
    "/admin/newsletters/signuprefusal/",
    "/admin/two-factor/",
]


def check_page(page, url: str) -> list[str]:
    """axe-core's critical and serious findings on a page, and a change list wider than its box."""
    response = page.goto(url)
    assert response.status == 200, url
    found = [f"{url}: {finding}" for finding in serious(page)]
    if page.locator("#result_list").count():
        fit = page.evaluate(LIST_FIT)
        if fit["table"] > fit["box"] or fit["page"] > fit["viewport"]:
            found.append(f"{url}: the list scrolls sideways at 1280 px: {fit}")
    return found


@pytest.mark.parametrize("editor", [True, False], ids=["editor", "superuser"])
def test_admin_pages_pass_axe_and_lists_fit_1280(browser_page, live_server, editor):
    page = browser_page
    seed = seed_admin()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, editor=editor)
    urls = editor_pages(seed)
    if not editor:  # lists with their checkboxes, forms whose inline rows can be changed, the owner's pages
        urls = [url for url in urls if url.endswith("/") and url.count("/") == 4 or "/change/" in url] + OTHER_PAGES
    problems = [problem for url in urls for problem in check_page(page, live_server.url + url)]
    assert problems == []

    # The deliveries: the status beside the recipient, every column on screen, the error cut to one line.
    page.goto(f"{live_server.url}/admin/digest/delivery/?status__exact=failed")
    fit = page.evaluate(LIST_FIT)
    assert fit["headers"][:2] == ["RECIPIENT", "STATUS"] and fit["headers"][-1] == "LAST ERROR"
    assert fit["lastColumnEnd"] <= 1280 - 200  # left of the filters
    error = page.locator("#result_list td.field-short_error").first
    assert error.get_attribute("title") is None and SMTP_ERROR in error.locator("span").get_attribute("title")
    assert error.evaluate("td => td.scrollWidth > td.clientWidth")  # cut, with "…"
    if not editor:
        page.goto(f"{live_server.url}/admin/digest/delivery/")
        page.screenshot(path=str(SHOTS / "23-deliveries-1280.png"))


CONTRAST = """(selector) => {
    const rgb = (css) => css.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const luminance = (c) => {
        const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const ratio = (a, b) => { const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x); return (hi + 0.05) / (lo + 0.05); };
    const background = rgb(getComputedStyle(document.body).backgroundColor);
    return [...document.querySelectorAll(selector)].map((el) => {
        const style = getComputedStyle(el);
        const colour = ['polyline', 'line'].includes(el.tagName) ? style.stroke : (el.classList.contains('swatch') ? style.backgroundColor : style.fill);
        return [el.getAttribute('data-series') || el.parentElement.textContent.trim(), Math.round(ratio(rgb(colour), background) * 100) / 100];
    });
}"""


@pytest.mark.parametrize("theme", ["system", "toggle"])
def test_dashboard_charts_read_on_the_dark_theme(chromium, monkeypatch, live_server, theme):
    """Every series, every legend swatch and the axes stand out from the dark page (3:1, WCAG's
    contrast for graphics), whether the system asks for dark or the admin's theme toggle does."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    seed = seed_admin()
    Subscriber.objects.filter(pk__in=Subscriber.objects.values("pk")[:3]).update(status="suppressed")
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="dark" if theme == "system" else "light"
    )
    page = context.new_page()
    if theme == "toggle":  # the admin's own switch, kept in localStorage
        page.goto(f"{live_server.url}/admin/login/")
        page.evaluate("localStorage.setItem('theme', 'dark')")
    log_in(page, live_server, editor=True)
    page.goto(f"{live_server.url}/admin/dashboard/?newsletter={seed['newsletter'].pk}")
    page.get_by_role("heading", name="Readers by status").wait_for()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(18, 18, 18)"
    series = page.evaluate(CONTRAST, "svg.chart rect[data-series], svg.chart polyline, .chart-legend .swatch")
    axes = page.evaluate(CONTRAST, "svg.chart line.axis")
    assert any(name.startswith("suppressed") for name, _ in series)  # the series that was black on black
    faint = [(name, ratio) for name, ratio in series + axes if ratio < 3]
    assert faint == []
    if theme == "system":
        page.screenshot(path=str(SHOTS / "23-dashboard-dark-1280.png"), full_page=True)
    context.close()
