"""The admin's import in a real browser (Chromium): upload, preview, consent, the progress page while it runs and done."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections
from django.utils import timezone

from newsletters.invitations import invitation_message
from newsletters.models import ImportStatus, Subscriber, SubscriberImport, SubscriberStatus, SubscriptionStatus
from newsletters.roles import OWNER
from tests.factories import NewsletterFactory, SubscriptionFactory, roles_make
from tests.newsletters.test_browser import SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = (
    "email,name,timezone,frequency\n"
    "ada@example.com,Ada Lovelace,Europe/London,daily\n"
    "grace@example.com,Grace Hopper,America/New_York,weekly\n"
    "not-an-address,Bob,,\n"
    "linus@example.com,Linus,Mars/Olympus,\n"
    "margaret@example.com,Margaret Hamilton,,monthly\n"
)


@pytest.fixture
def page(chromium, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()
    connections.close_all()


def shots(page, name: str) -> None:
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"24-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_owner_previews_a_file_and_imports_it_with_consent(page, live_server):
    NewsletterFactory(name="Field Notes")
    user = get_user_model().objects.create_user("owner", "owner@example.com", "owner-password", is_staff=True)
    roles_make()  # the group the migration made: a transactional test's flush dropped it
    user.groups.add(Group.objects.get(name=OWNER))
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("owner-password")
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/admin/newsletters/subscriberimport/add/")
    page.get_by_label("Newsletter").select_option(label="Field Notes")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "old-tool-export.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("line 4: email 'not-an-address'").wait_for()
    page.get_by_text("line 5: timezone").wait_for()
    shots(page, "import-preview")
    assert not Subscriber.objects.exists()

    page.get_by_label("I have their consent").check()
    page.get_by_role("button", name="Import 3 rows").click()
    page.get_by_role("status").get_by_text("Done").wait_for()
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    shots(page, "import-done")
    assert set(Subscriber.objects.values_list("email", "status")) == {
        (email, SubscriberStatus.ACTIVE) for email in ("ada@example.com", "grace@example.com", "margaret@example.com")
    }

    # The progress page as it looks while a worker runs an import (this one, put back to running).
    record = SubscriberImport.objects.get()
    SubscriberImport.objects.filter(pk=record.pk).update(status=ImportStatus.RUNNING, rows_done=1)
    page.reload()
    page.get_by_role("status").get_by_text("1 of 3 rows written").wait_for()
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    shots(page, "import-progress")


def test_the_invitation_reads_well_in_a_mail_client_width(page):
    newsletter = NewsletterFactory(
        name="Field Notes",
        description="Notes from the field, every week.",
        postal_address="Field Notes, 1 Quay Street, Dublin",
    )
    subscription = SubscriptionFactory(
        newsletter=newsletter,
        subscriber__email="ada@example.com",
        subscriber__name="Ada Lovelace",
        subscriber__status=SubscriberStatus.PENDING,
        status=SubscriptionStatus.PENDING,
    )
    message = invitation_message(subscription, now=timezone.now())
    [(html, _)] = message.alternatives
    for width in (800, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.set_content(html)
        page.get_by_role("link", name="Yes, keep sending it").wait_for()
        page.screenshot(path=str(SHOTS / f"24-invitation-{width}.png"), full_page=True)
