"""Digests per mailbox provider on the dashboard: counted from the ledger in one query, named as sending names them."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from digest.desk.providers import deliveries_by_provider
from digest.models import Delivery, DeliveryStatus
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
SENT, DEFERRED, FAILED, PENDING = (
    DeliveryStatus.SENT,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.FAILED,
    DeliveryStatus.PENDING,
)


def deliver(email: str, *, newsletter, ago: datetime.timedelta, status=SENT, now) -> Delivery:
    subscription = SubscriptionFactory(newsletter=newsletter, subscriber=SubscriberFactory(email=email))
    end = now - ago
    return Delivery.objects.create(
        subscription=subscription,
        newsletter=newsletter,
        window_start=end - datetime.timedelta(days=1),
        window_end=end,
        status=status,
    )


@pytest.fixture
def now():
    # Noon in the site's time zone: "an hour ago" is today, "two days ago" is not.
    today = timezone.localdate()
    return datetime.datetime.combine(today, datetime.time(12), tzinfo=timezone.get_current_timezone())


def by_name(counts):
    return {p.name: (dict(p.today), dict(p.recent)) for p in counts}


def test_counts_each_provider_today_and_over_the_range(now, django_assert_num_queries):
    letter, other = NewsletterFactory(), NewsletterFactory()
    hour, days = datetime.timedelta(hours=1), datetime.timedelta(days=2)
    deliver("a@gmail.com", newsletter=letter, ago=hour, now=now)
    deliver("b@GoogleMail.com", newsletter=letter, ago=hour, status=DEFERRED, now=now)  # the same provider
    deliver("c@gmail.com", newsletter=letter, ago=days, now=now)
    deliver("d@hotmail.com", newsletter=letter, ago=days, status=FAILED, now=now)
    deliver("e@mail.example.org", newsletter=letter, ago=hour, status=DEFERRED, now=now)  # its own domain
    deliver("f@gmail.com", newsletter=letter, ago=hour, status=PENDING, now=now)  # not yet an outcome
    deliver("g@gmail.com", newsletter=letter, ago=datetime.timedelta(days=45), now=now)  # before the range
    deliver("h@gmail.com", newsletter=other, ago=hour, now=now)
    with django_assert_num_queries(1):
        counts = deliveries_by_provider(days=30, now=now, newsletter_id=letter.pk)
    zero = {SENT: 0, DEFERRED: 0, FAILED: 0}
    assert by_name(counts) == {
        "google": ({**zero, SENT: 1, DEFERRED: 1}, {**zero, SENT: 2, DEFERRED: 1}),
        "microsoft": (zero, {**zero, FAILED: 1}),
        "mail.example.org": ({**zero, DEFERRED: 1}, {**zero, DEFERRED: 1}),
    }
    assert [p.name for p in counts] == ["google", "mail.example.org", "microsoft"]  # largest first
    every = by_name(deliveries_by_provider(days=90, now=now))
    assert every["google"][1][SENT] == 4  # the other newsletter's and the one 45 days ago


def test_the_queries_do_not_grow_with_digests_or_domains(now, django_assert_num_queries):
    letter = NewsletterFactory()
    for i in range(40):
        deliver(f"r{i}@d{i % 13}.example", newsletter=letter, ago=datetime.timedelta(hours=1), now=now)
    with django_assert_num_queries(1):
        counts = deliveries_by_provider(days=30, now=now, shown=5)
    assert len(counts) == 5
    rest = counts[-1]
    assert rest.name == "9 other domains" and rest.domains == 9
    assert sum(p.recent[SENT] for p in counts) == 40 and sum(p.today[SENT] for p in counts) == 40


def test_the_dashboard_shows_the_table(client, now):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    letter = NewsletterFactory()
    deliver("a@yahoo.com", newsletter=letter, ago=datetime.timedelta(minutes=1), status=DEFERRED, now=timezone.now())
    deliver("b@aol.com", newsletter=letter, ago=datetime.timedelta(minutes=1), now=timezone.now())
    page = client.get(reverse("dashboard")).content.decode()
    row = re.search(r'<th role="rowheader" scope="row">yahoo</th>(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'data-label="([^"]+)">(?:<strong>)?(\d+)', row)
    assert cells == [
        ("Sent today", "1"),
        ("Deferred today", "1"),
        ("Sent, 30 days", "1"),
        ("Deferred, 30 days", "1"),
        ("Failed, 30 days", "0"),
    ]
    assert "No digest sent or deferred" not in page
