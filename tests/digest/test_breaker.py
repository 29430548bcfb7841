"""The circuit breaker: past the bounce or complaint limits a newsletter pauses, the rest sends, one click resumes it."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from digest.breaker import breaker_check, breaker_rates, newsletter_resume
from digest.models import BounceKind, Delivery, DeliveryStatus
from digest.returns.policy import Report, bounce_record, fingerprint_of
from newsletters.models import Newsletter, Subscription
from project.clock import db_now
from tests.digest.conftest import at
from tests.factories import NewsletterFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
NOW = at(2026, 6, 2, 8, 5)
ADMIN = "ops@example.com"
REFUSED = "550 5.1.1 No such user here"


@pytest.fixture(autouse=True)
def _admins(settings):
    settings.ADMINS = [ADMIN]


def _sent(newsletter, count: int, *, ago=datetime.timedelta(0)) -> list[Delivery]:
    """`count` digests of `newsletter` the relay accepted `ago` (claims are stamped on the database's clock)."""
    return [
        Delivery.objects.create(
            subscription=subscription,
            newsletter=newsletter,
            window_start=NOW - datetime.timedelta(days=1),
            window_end=NOW,
            status=DeliveryStatus.SENT,
            sent_at=NOW,
            claimed_at=db_now() - ago,
        )
        for subscription in SubscriptionFactory.create_batch(count, newsletter=newsletter)
    ]


def _came_back(delivery: Delivery, kind: BounceKind, when=NOW):
    report = Report(kind=kind, source="test", occurred_at=when, fingerprint=fingerprint_of(kind, delivery.pk))
    return bounce_record(report=report, subscriber=delivery.subscription.subscriber, delivery=delivery, now=when)


def _paused(newsletter) -> Newsletter:
    return Newsletter.objects.get(pk=newsletter.pk)


def _admin_mails(world) -> list:
    return [message for message in world.inbox(ADMIN) if "paused" in message["Subject"]]


def test_hard_bounces_trip_it_past_the_limit_not_at_it(world, settings):
    settings.DIGEST_BREAKER_MIN_SENT = 100
    deliveries = _sent(world.newsletter, 100)
    for delivery in deliveries[:5]:  # 5.0%: at the limit, not past it
        _came_back(delivery, BounceKind.HARD)
    assert _paused(world.newsletter).paused_at is None
    _came_back(deliveries[5], BounceKind.HARD)
    newsletter = _paused(world.newsletter)
    assert newsletter.paused_at is not None
    assert newsletter.pause_reason == "hard bounces 6.0% of 100 sent"


def test_not_below_the_minimum_sample(world, settings):
    settings.DIGEST_BREAKER_MIN_SENT = 100
    deliveries = _sent(world.newsletter, 50)
    for delivery in deliveries[:10]:  # 20%, but of too few to judge
        _came_back(delivery, BounceKind.HARD)
    assert _paused(world.newsletter).paused_at is None
    assert breaker_rates(newsletter=world.newsletter, now=db_now()).hard == 10


def test_only_the_last_hours_count(world, settings):
    settings.DIGEST_BREAKER_MIN_SENT = 10
    settings.DIGEST_BREAKER_HOURS = 24
    old = _sent(world.newsletter, 10, ago=datetime.timedelta(hours=25))
    _sent(world.newsletter, 10)
    for delivery in old[:5]:
        _came_back(delivery, BounceKind.HARD)
    assert breaker_rates(newsletter=world.newsletter, now=db_now()).sent == 10
    assert _paused(world.newsletter).paused_at is None


def test_a_complaint_rate_trips_it_and_admins_hear_once(world, settings):
    settings.DIGEST_BREAKER_MIN_SENT = 100
    deliveries = _sent(world.newsletter, 400)
    _came_back(deliveries[0], BounceKind.COMPLAINT)  # 0.25% > 0.1%
    assert _paused(world.newsletter).pause_reason == "complaints 0.25% of 400 sent"
    _came_back(deliveries[1], BounceKind.COMPLAINT)
    assert breaker_check(newsletter_ids=[world.newsletter.pk], now=db_now()) == []  # already paused
    mails = _admin_mails(world)
    assert len(mails) == 1
    assert mails[0]["Subject"].endswith("Digest: sending of Weekly Notes paused")
    assert "complaints 0.25% of 400 sent" in mails[0].get_body(preferencelist=("plain",)).get_content()


def test_temporary_failures_reported_after_acceptance_trip_it(world, settings):
    settings.DIGEST_BREAKER_MIN_SENT = 100
    for delivery in _sent(world.newsletter, 100)[:6]:
        _came_back(delivery, BounceKind.SOFT)
    assert _paused(world.newsletter).pause_reason == "temporary failures 6.0% of 100 sent"


def test_a_limit_set_to_zero_is_off(world, settings):
    settings.DIGEST_BREAKER_MIN_SENT = 100
    settings.DIGEST_BREAKER_COMPLAINT_RATE = 0
    _came_back(_sent(world.newsletter, 100)[0], BounceKind.COMPLAINT)
    assert _paused(world.newsletter).paused_at is None


def _two_newsletters(world, settings, *, bad: int, good: int):
    """The world's newsletter with `bad` readers, every fifth refused by the relay, and another with `good`."""
    settings.DIGEST_BATCH_SIZE = 10
    settings.DIGEST_BREAKER_MIN_SENT = 20
    other = NewsletterFactory(name="Daily Other", slug="other")
    for n in range(bad):
        world.subscribe(f"bad{n}@example.com", since=at(2026, 6, 1))
        if n % 5 == 0:
            world.smtp.handler.replies[f"bad{n}@example.com"] = REFUSED
    for n in range(good):
        world.subscribe(f"good{n}@example.com", since=at(2026, 6, 1), newsletter=other)
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.publish("Issue b", at(2026, 6, 1, 12, 0), newsletter=other)
    return other


def test_a_run_pauses_the_newsletter_and_sends_the_others(world, settings):
    other = _two_newsletters(world, settings, bad=60, good=30)
    summary = world.run(NOW)
    newsletter = _paused(world.newsletter)
    assert re.fullmatch(r"hard bounces \d+\.\d% of \d+ sent", newsletter.pause_reason)
    waiting = Delivery.objects.filter(newsletter=newsletter, status=DeliveryStatus.PENDING)
    assert waiting.count() >= 20 and set(waiting.values_list("attempts", flat=True)) == {0}
    assert Delivery.objects.filter(newsletter=other, status=DeliveryStatus.SENT).count() == 30
    assert all(len(world.inbox(f"good{n}@example.com")) == 1 for n in range(30))
    assert summary.paused_held == waiting.count()
    assert f"; {waiting.count()} held: newsletter weekly paused ({newsletter.pause_reason})" in str(summary)
    assert len(_admin_mails(world)) == 1
    # A later run sends nothing of it while it is paused.
    world.run(NOW + datetime.timedelta(minutes=5))
    assert Delivery.objects.filter(newsletter=newsletter, status=DeliveryStatus.PENDING).count() == waiting.count()


def test_after_resume_the_waiting_digests_go_out_once_each(world, settings):
    _two_newsletters(world, settings, bad=60, good=0)
    world.run(NOW)
    held = set(Delivery.objects.filter(status=DeliveryStatus.PENDING).values_list("subscription_id", flat=True))
    assert _paused(world.newsletter).paused_at is not None and held
    world.publish("Issue c", at(2026, 6, 2, 12, 0))
    received = len(world.smtp.received)
    world.run(at(2026, 6, 3, 8, 5))  # a day later, still paused: its next digests are planned, and wait too
    assert len(world.smtp.received) == received
    assert held < set(Delivery.objects.filter(status=DeliveryStatus.PENDING).values_list("subscription_id", flat=True))
    world.smtp.handler.replies.clear()  # the owner found the cause; the relay takes the rest
    assert newsletter_resume(newsletter_id=world.newsletter.pk, by="ed", now=db_now())
    summary = world.run(at(2026, 6, 3, 8, 15))
    assert summary.paused == "" and _paused(world.newsletter).resumed_by == "ed"
    world.run(at(2026, 6, 3, 8, 20))
    assert not Delivery.objects.filter(newsletter=world.newsletter, status=DeliveryStatus.PENDING).exists()
    for subscription in Subscription.objects.filter(newsletter=world.newsletter).select_related("subscriber"):
        titles = world.titles(subscription.subscriber.email)
        refused = subscription.deliveries.filter(status=DeliveryStatus.FAILED).exists()
        assert titles == (["Issue c"] if refused else ["Issue a", "Issue c"]), subscription.subscriber.email
    assert len(_admin_mails(world)) == 1


def _editor(*, change: bool):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True)
    codenames = ["view_subscription", "view_delivery"] + (["change_newsletter"] if change else [])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_the_dashboard_shows_it_and_one_click_resumes_it(world, settings):
    settings.DIGEST_BREAKER_MIN_SENT = 100
    deliveries = _sent(world.newsletter, 100)
    for delivery in deliveries[:6]:
        _came_back(delivery, BounceKind.HARD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(_editor(change=True))
    page = client.get(reverse("dashboard")).content.decode()
    assert "Sending of Weekly Notes is paused" in page and "hard bounces 6.0% of 100 sent" in page
    assert "Resume sending" in page
    url = reverse("breaker_resume", args=[world.newsletter.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no CSRF token
    assert _paused(world.newsletter).paused_at is not None
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    newsletter = _paused(world.newsletter)
    assert newsletter.paused_at is None and newsletter.pause_reason == "" and newsletter.resumed_by == "editor"
    assert "is paused" not in client.get(reverse("dashboard")).content.decode()


def test_resuming_needs_staff_with_the_right_to_change_newsletters(world, client):
    Newsletter.objects.filter(pk=world.newsletter.pk).update(paused_at=NOW, pause_reason="complaints 1.0% of 200 sent")
    url = reverse("breaker_resume", args=[world.newsletter.pk])
    response = client.post(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(_editor(change=False))
    page = client.get(reverse("dashboard")).content.decode()
    assert "is paused" in page and "Resume sending" not in page
    assert client.post(url).status_code == 403
    assert _paused(world.newsletter).paused_at == NOW


def test_the_newsletter_form_cannot_clear_a_pause(world, admin_client):
    Newsletter.objects.filter(pk=world.newsletter.pk).update(paused_at=NOW, pause_reason="complaints 1.0% of 200 sent")
    change = reverse("admin:newsletters_newsletter_change", args=[world.newsletter.pk])
    page = admin_client.get(change)
    form = page.context["adminform"].form
    assert "paused_at" not in form.fields and "resumed_by" not in form.fields
    # Posted as a browser would: no empty fields (the logo), the inline rows' counts.
    posted = {key: value for key, value in form.initial.items() if value not in (None, "")}
    for inline in page.context["inline_admin_formsets"]:
        posted |= {f"{inline.formset.prefix}-TOTAL_FORMS": "0", f"{inline.formset.prefix}-INITIAL_FORMS": "0"}
    posted |= {"send_time": "08:00", "paused_at": "", "pause_reason": ""}
    assert admin_client.post(change, posted).status_code == 302
    assert _paused(world.newsletter).paused_at == NOW
