"""The editors' desk in a real browser (Debian's Chromium via Playwright): the dashboard, an issue's
report, the live preview while writing, and the welcome mail. Screenshots at 375 and 800 px go to
test-output/screenshots/ (docs/screenshots/ come from here)."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from digest.models import Delivery, DeliveryStatus, Run
from newsletters.models import Frequency, Subscription
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.letters import letters_deliver
from tests.newsletters import test_browser
from tests.newsletters.test_browser import SHOTS, shot

browser_page = test_browser.browser_page  # the reader journey's Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = (375, 800)


def log_in(page, live_server) -> None:
    get_user_model().objects.create_superuser("editor", "editor@example.com", "editor-password")
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("editor-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Dashboard", exact=True).first.wait_for()


def screenshots(page, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"{name}-{width}")


def seed_desk() -> tuple:
    """A newsletter with readers in several time zones and a few weeks of digests."""
    newsletter = NewsletterFactory(name="Django Weekly Notes", slug="django-weekly")
    now = timezone.now()
    zones = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]
    frequencies = [Frequency.DAILY, Frequency.WEEKLY, Frequency.IMMEDIATE]
    subscriptions = []
    for i in range(36):
        subscription = SubscriptionFactory(
            newsletter=newsletter,
            frequency=frequencies[i % 3],
            subscriber=SubscriberFactory(timezone=zones[i % 4]),
        )
        Subscription.objects.filter(pk=subscription.pk).update(created_at=now - datetime.timedelta(days=i % 20))
        subscriptions.append(subscription)
    for subscription in subscriptions[-4:]:
        Subscription.objects.filter(pk=subscription.pk).update(
            status="unsubscribed", unsubscribed_at=now - datetime.timedelta(days=1)
        )
    issue = IssueFactory(
        newsletter=newsletter, title="Mailers in Django 6.1", publish_at=now - datetime.timedelta(days=3)
    )
    rows = []
    for day in range(1, 15):
        end = now - datetime.timedelta(days=day)
        for n, subscription in enumerate(subscriptions[: 20 + day % 5]):
            status = DeliveryStatus.FAILED if n == 0 and day % 4 == 0 else DeliveryStatus.SENT
            rows.append(
                Delivery(
                    subscription=subscription,
                    newsletter=newsletter,
                    window_start=end - datetime.timedelta(days=1),
                    window_end=end,
                    status=status,
                    sent_at=end,
                )
            )
    Delivery.objects.bulk_create(rows)
    for hours, sent, failed in [(2, 21, 0), (26, 22, 1), (50, 20, 0)]:
        started = now - datetime.timedelta(hours=hours)
        Run.objects.create(
            started_at=started,
            finished_at=started + datetime.timedelta(seconds=3.4),
            now=started,
            summary={"due": sent + failed, "sent": sent, "failed": failed, "deferred": 0, "skipped": 0},
        )
    return newsletter, issue


RUNS_LAYOUT = """() => {
    const table = document.querySelector('table.runs-table');
    const row = table.querySelector('tbody tr');
    const card = table.closest('.dash-card'), padding = getComputedStyle(card);
    return {
        page: document.documentElement.scrollWidth,
        viewport: window.innerWidth,
        card: card.clientWidth - parseFloat(padding.paddingLeft) - parseFloat(padding.paddingRight),
        table: table.scrollWidth,
        tableBox: table.clientWidth,
        stacked: getComputedStyle(row).display === 'grid' && table.querySelector('thead').offsetHeight <= 1,
        label: getComputedStyle(row.querySelector('td'), '::before').content.split(' / ')[0],
    };
}"""


def test_dashboard_and_issue_report(browser_page, live_server):
    page = browser_page
    newsletter, issue = seed_desk()
    log_in(page, live_server)
    page.get_by_role("link", name="open the dashboard").click()
    page.get_by_role("heading", name="Readers by status").wait_for()
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    for i in range(5):  # drawn, with a size, on screen
        box = charts.nth(i).bounding_box()
        assert box["width"] > 200 and box["height"] > 60
    page.get_by_label("Newsletter").select_option(label="Django Weekly Notes")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("heading", name="Dashboard: Django Weekly Notes").wait_for()
    assert page.locator('rect[data-series="failed"]').count() >= 3
    assert page.locator("table[aria-labelledby=runs-heading] tbody tr").count() == 3  # the last runs
    screenshots(page, "7-dashboard")
    for width in (*WIDTHS, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        layout = page.evaluate(RUNS_LAYOUT)
        page.locator(".runs-card:not(.providers-card)").screenshot(path=str(SHOTS / f"7-dashboard-runs-{width}.png"))
        assert layout["page"] <= layout["viewport"], (width, layout)  # the page never scrolls sideways
        assert layout["table"] <= layout["tableBox"], (width, layout)  # nor does the runs table in its card
        # A narrow card (a phone; at 800 px beside the admin's sidebar) stacks each run under its
        # start time, labelled; a wide one has the seven columns.
        assert layout["stacked"] == (layout["card"] <= 480), (width, layout)
        assert layout["label"] == ('"Took "' if layout["stacked"] else "none"), (width, layout)
    assert page.evaluate(RUNS_LAYOUT)["card"] > 480  # 1280 px: the columns were checked too

    page.goto(f"{live_server.url}/admin/newsletters/issue/{issue.pk}/change/")
    page.get_by_role("link", name="Report").click()
    page.get_by_text("digests carried it").wait_for()
    assert page.locator('[aria-label="Report"] strong').first.inner_text() != "0"
    screenshots(page, "8-issue-report")

    draft = IssueFactory(newsletter=newsletter, title="Next week", status="draft", publish_at=None)
    page.goto(f"{live_server.url}/admin/newsletters/issue/{draft.pk}/change/")
    page.get_by_role("link", name="Who gets it and when").click()
    page.get_by_role("heading", name="Who gets this and when").wait_for()
    table = page.locator("table.dash-table").inner_text()
    assert "Immediate" in table and "Daily" in table and "Weekly" in table
    screenshots(page, "9-who-gets-it")


def test_live_preview_while_writing(browser_page, live_server):
    page = browser_page
    NewsletterFactory(name="Django Weekly Notes", slug="django-weekly")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server)
    page.set_viewport_size({"width": 1280, "height": 900})  # side by side (tabs below 1100 px: test_browser_desk)
    page.goto(f"{live_server.url}/admin/newsletters/issue/add/")
    page.get_by_label("Newsletter").select_option(label="Django Weekly Notes")
    page.get_by_label("Title").fill("Mailers in Django 6.1")
    body = page.get_by_label("Body")
    body.fill("## What changed\n\nThe `MAILERS` setting replaces `EMAIL_*`.\n")
    frame = page.frame_locator("#live-preview iframe")
    frame.get_by_role("heading", name="What changed").wait_for()
    assert "MAILERS" in page.locator(".lp-text").inner_text()
    assert page.locator(".lp-subject").inner_text()  # the digest's subject line

    # Typing changes the preview (debounced: one request once typing pauses).
    body.press("End")
    body.press_sequentially("\nA second paragraph, typed.", delay=20)
    # In the body as a paragraph (the hidden preheader repeats the issue's first words).
    frame.locator("p", has_text="A second paragraph, typed.").last.wait_for()
    page.locator(".lp-text", has_text="A second paragraph, typed.").wait_for()

    # A javascript: link and an image without alt text are flagged, and nothing runs.
    body.press_sequentially("\n\n[click me](javascript:alert(document.cookie)) ![](https://example.com/chart.png)\n")
    warnings = page.locator(".lp-warnings li")
    warnings.filter(has_text="javascript:alert(document.cookie)").wait_for()
    warnings.filter(has_text="has no alt text").wait_for()
    frame.get_by_text("click me", exact=True).click()
    assert "javascript:" not in page.locator("#live-preview iframe").get_attribute("srcdoc")
    assert dialogs == []
    screenshots(page, "10-live-preview")
    page.set_viewport_size({"width": 800, "height": 900})
    page.get_by_role("tab", name="Preview").click()
    page.locator("#live-preview").scroll_into_view_if_needed()
    page.locator("#live-preview").screenshot(path=str(test_browser.SHOTS / "10-live-preview-panel-800.png"))


def test_welcome_mail_written_in_the_admin_reaches_a_new_reader(browser_page, live_server, smtp_server, settings):
    page = browser_page
    settings.SITE_URL = live_server.url
    newsletter = NewsletterFactory(name="Django Weekly Notes", slug="django-weekly")
    IssueFactory(newsletter=newsletter, title="Mailers in Django 6.1", slug="mailers")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/newsletters/newsletter/{newsletter.pk}/change/")
    # The welcome is onboarding step one; a second step three days later.
    for row, (days, subject, text) in enumerate(
        [
            (0, "", "Thanks for joining **Django Weekly Notes**.\n\nOne email a week, no more."),
            (3, "Three things to try", "1. Browse the archive.\n2. Try one tip.\n3. Reply and tell us."),
        ]
    ):
        page.locator(f'input[name="onboarding_steps-{row}-position"]').fill(str(row + 1))
        page.locator(f'input[name="onboarding_steps-{row}-delay_days"]').fill(str(days))
        page.locator(f'input[name="onboarding_steps-{row}-subject"]').fill(subject)
        page.locator(f'textarea[name="onboarding_steps-{row}-body"]').fill(text)
        page.get_by_role("button", name="Save and continue editing").click()
        page.get_by_text("was changed successfully").wait_for()
    page.locator("#onboarding_steps-group").scroll_into_view_if_needed()
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator("#onboarding_steps-group").screenshot(path=str(SHOTS / f"25-onboarding-admin-{width}.png"))
    assert list(newsletter.onboarding_steps.values_list("position", "delay_days")) == [(1, 0), (2, 3)]

    page.goto(f"{live_server.url}/subscribe/")
    page.get_by_label("Email address").fill("reader@example.com")
    page.get_by_role("checkbox", name="Django Weekly Notes").check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    [confirmation] = smtp_server.received
    text = confirmation.message.get_body(preferencelist=("plain",)).get_content()
    link = next(word for word in text.split() if "/confirm/" in word)
    page.goto(link)
    page.get_by_role("button", name="Yes, confirm my subscription").click()
    page.get_by_text("You're subscribed").wait_for()

    assert len(smtp_server.received) == 1  # the welcome is a letter: the next run sends it
    letters_deliver()
    welcome = smtp_server.received[-1].message
    assert welcome["Subject"] == "Welcome to Django Weekly Notes"
    page.set_content(welcome.get_body(preferencelist=("html",)).get_content())
    page.get_by_text("One email a week, no more.", exact=True).wait_for()  # not the preheader's copy
    assert (
        page.get_by_role("link", name="Mailers in Django 6.1")
        .get_attribute("href")
        .endswith("/n/django-weekly/mailers/")
    )
    screenshots(page, "11-welcome-mail")
    screenshots(page, "25-onboarding-welcome")


def test_still_want_this_mail_and_its_keep_page(browser_page, live_server, smtp_server, settings):
    page = browser_page
    settings.SITE_URL = live_server.url
    settings.DIGEST_RECONFIRM_MONTHS = 12
    newsletter = NewsletterFactory(name="Django Weekly Notes", slug="django-weekly", postal_address="Notes Ltd")
    subscription = SubscriptionFactory(
        newsletter=newsletter, subscriber=SubscriberFactory(email="quiet@example.com", name="Ann", status="active")
    )
    subscription.subscriber.last_link_at = timezone.now() - datetime.timedelta(days=400)
    subscription.subscriber.save()
    assert letters_deliver()["letters_sent"] == 1
    [received] = smtp_server.received
    assert received.message["Subject"] == "Still want Django Weekly Notes?"
    page.set_content(received.message.get_body(preferencelist=("html",)).get_content())
    keep = page.get_by_role("link", name="Yes, keep Django Weekly Notes coming")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"25-reconfirm-{width}")
    page.goto(keep.get_attribute("href"))
    page.get_by_role("heading", name="Still want Django Weekly Notes?").wait_for()
    page.get_by_role("button", name="Yes, keep it coming").click()
    page.get_by_role("heading", name="Thanks, Django Weekly Notes keeps coming").wait_for()
    screenshots(page, "25-keep")
    subscription.subscriber.refresh_from_db()
    assert subscription.subscriber.last_link_at > timezone.now() - datetime.timedelta(minutes=5)
