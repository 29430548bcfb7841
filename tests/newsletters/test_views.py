"""Reader pages: what the archive pages show, and that no page's queries grow with its content (no N+1)."""

import datetime
import re

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from newsletters.models import Attachment, Subscription, SubscriptionStatus
from newsletters.tokens import preferences_url, unsubscribe_url
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.newsletters.test_browser import SHOTS

pytestmark = pytest.mark.django_db


def test_archive_lists_only_visible_issues(client):
    newsletter = NewsletterFactory(slug="weekly")
    IssueFactory(newsletter=newsletter, title="Shown")
    IssueFactory(newsletter=newsletter, title="Tomorrow", publish_at=timezone.now() + datetime.timedelta(days=1))
    IssueFactory(newsletter=newsletter, title="Secret draft", status="draft", publish_at=None)
    body = client.get("/n/weekly/").content.decode()
    assert "Shown" in body
    assert "Tomorrow" not in body and "Secret draft" not in body


def test_archive_header_starts_with_the_description_or_the_links(client):
    NewsletterFactory(slug="weekly", description="Notes for Django people.")
    NewsletterFactory(slug="bare", description="")
    described = client.get("/n/weekly/").content.decode()
    assert '<p class="muted">Notes for Django people. · <a href="/n/weekly/feed/">Atom feed</a>' in described
    assert '<p class="muted"><a href="/n/bare/feed/">Atom feed</a>' in client.get("/n/bare/").content.decode()


def archive_of(count: int):
    """A newsletter with `count` published issues, issue-0 the oldest, one hour apart."""
    newsletter = NewsletterFactory(slug="weekly")
    start = timezone.now() - datetime.timedelta(days=30)
    for n in range(count):
        IssueFactory(newsletter=newsletter, slug=f"issue-{n}", publish_at=start + datetime.timedelta(hours=n))
    return newsletter


def listed(body: str) -> list[str]:
    return re.findall(r'href="/n/weekly/(issue-\d+)/"', body)


def test_archive_pages_list_twenty_issues_newest_first(client):
    archive_of(41)
    first = client.get("/n/weekly/").content.decode()
    assert listed(first) == [f"issue-{n}" for n in range(40, 20, -1)]
    assert "Page 1 of 3" in first
    assert 'rel="prev"' not in first
    assert '<a rel="next" href="/n/weekly/?page=2">' in first
    second = client.get("/n/weekly/?page=2").content.decode()
    assert listed(second) == [f"issue-{n}" for n in range(20, 0, -1)]
    assert "Page 2 of 3" in second
    assert '<a rel="prev" href="/n/weekly/">' in second  # page 1 has one address
    assert '<a rel="next" href="/n/weekly/?page=3">' in second
    last = client.get("/n/weekly/?page=3").content.decode()
    assert listed(last) == ["issue-0"]
    assert "Page 3 of 3" in last
    assert '<a rel="prev" href="/n/weekly/?page=2">' in last and 'rel="next"' not in last
    assert '<nav class="pages" aria-label="Archive pages">' in last


def test_archive_of_one_page_shows_no_page_links(client):
    archive_of(20)
    body = client.get("/n/weekly/").content.decode()
    assert len(listed(body)) == 20
    assert "Page 1" not in body and 'rel="next"' not in body
    assert client.get("/n/weekly/?page=1").status_code == 200
    assert client.get("/n/weekly/?page=2").status_code == 404


def test_empty_archive_has_its_first_page(client):
    NewsletterFactory(slug="weekly")
    response = client.get("/n/weekly/")
    assert response.status_code == 200
    assert "Nothing published yet." in response.content.decode()
    assert client.get("/n/weekly/?page=2").status_code == 404


@pytest.mark.parametrize("page", ["0", "4", "-1", "abc", "", "1.0", " 2", "+2", "1_0", "\u0662", "9" * 30, "last"])
def test_archive_page_out_of_range_or_not_a_number_is_404(client, page):
    archive_of(41)
    response = client.get("/n/weekly/", {"page": page})
    assert response.status_code == 404


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 800])
def test_archive_page_links_fit_a_phone(client, request, width):
    archive_of(45)
    html = client.get("/n/weekly/?page=2").content.decode()
    # The browser starts once the page is fetched: Playwright's event loop and the ORM do not mix.
    page = request.getfixturevalue("chromium").new_page(viewport={"width": width, "height": 700})
    page.set_content(html)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"archive-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    nav = page.get_by_role("navigation", name="Archive pages")
    newer, older = nav.get_by_role("link", name="Newer issues"), nav.get_by_role("link", name="Older issues")
    assert newer.bounding_box()["y"] == older.bounding_box()["y"]  # side by side, under "Page 2 of 3"
    assert older.bounding_box()["x"] + older.bounding_box()["width"] <= width
    page.close()


def test_issue_page_renders_sanitized_markdown_and_hides_drafts(client):
    newsletter = NewsletterFactory(slug="weekly")
    IssueFactory(newsletter=newsletter, slug="hello", body="## Hi\n\n<script>alert(1)</script>")
    IssueFactory(newsletter=newsletter, slug="draft", status="draft", publish_at=None)
    response = client.get("/n/weekly/hello/")
    assert response.status_code == 200
    assert "<h2>Hi</h2>" in response.content.decode()
    assert "alert(1)" not in response.content.decode()
    assert client.get("/n/weekly/draft/").status_code == 404
    assert client.get("/n/nope/").status_code == 404


def get_counting(client, assert_queries, url: str, queries: int) -> str:
    with assert_queries(queries):
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("url", ["/", "/subscribe/"])
def test_home_and_subscribe_take_one_query_however_many_newsletters(client, django_assert_num_queries, url):
    NewsletterFactory(name="First")
    assert "First" in get_counting(client, django_assert_num_queries, url, 1)
    for n in range(5):
        NewsletterFactory(name=f"More {n}")
    assert "More 4" in get_counting(client, django_assert_num_queries, url, 1)


@pytest.mark.parametrize(("path", "queries"), [("/n/weekly/", 3), ("/n/weekly/feed/", 2)])
def test_archive_and_feed_queries_do_not_grow_with_issues(client, django_assert_num_queries, path, queries):
    newsletter = NewsletterFactory(slug="weekly")
    IssueFactory(newsletter=newsletter, slug="first")
    assert "/n/weekly/first/" in get_counting(client, django_assert_num_queries, path, queries)
    IssueFactory.create_batch(30, newsletter=newsletter)
    body = get_counting(client, django_assert_num_queries, path, queries)
    assert body.count("/n/weekly/issue-") >= 20


def test_archive_pages_take_three_queries_and_read_no_bodies(client, django_assert_num_queries):
    archive_of(45)
    for url in ["/n/weekly/", "/n/weekly/?page=2", "/n/weekly/?page=3"]:
        with django_assert_num_queries(3) as captured:  # newsletter, count, one page of issues
            response = client.get(url)
        assert response.status_code == 200
        issue_query = captured.captured_queries[-1]["sql"]
        assert '"body"' not in issue_query and "LIMIT" in issue_query


def test_issue_page_takes_three_queries_however_many_attachments(client, django_assert_num_queries, settings):
    issue = IssueFactory(newsletter=NewsletterFactory(slug="weekly"), slug="hello")
    for n in range(3):
        attachment = Attachment(issue=issue, display_name=f"file-{n}.txt")
        attachment.file.save(f"file-{n}.txt", ContentFile(b"x"), save=True)
    body = get_counting(client, django_assert_num_queries, "/n/weekly/hello/", 3)  # newsletter, issue, files
    assert all(f"file-{n}.txt" in body for n in range(3))


def test_preferences_page_queries_do_not_grow_with_subscriptions(client, django_assert_num_queries):
    subscriber = SubscriberFactory(timezone="Asia/Tokyo")
    SubscriptionFactory(subscriber=subscriber, newsletter=NewsletterFactory(name="First"))
    url = preferences_url(subscriber.pk).split("testserver", 1)[-1]
    # The subscriber, their subscriptions, and on the first visit the link's use (re-confirmation).
    get_counting(client, django_assert_num_queries, url, 3)
    for n in range(5):
        SubscriptionFactory(subscriber=subscriber, newsletter=NewsletterFactory(name=f"More {n}"))
    body = get_counting(client, django_assert_num_queries, url, 2)
    assert body.count("next on") == 6
    assert '<option value="Asia/Tokyo" selected>' in body  # the reader's zone, preselected


def test_unsubscribe_page_and_one_click_post_take_constant_queries(django_assert_num_queries):
    subscription = SubscriptionFactory()
    url = unsubscribe_url(subscription.pk).split("testserver", 1)[-1]
    mail_client = Client(enforce_csrf_checks=True)
    get_counting(mail_client, django_assert_num_queries, url, 1)
    # The UPDATE, and whether a webhook endpoint wants to hear of it, in one transaction (a
    # savepoint pair here, where each test runs inside a transaction).
    with django_assert_num_queries(4):
        response = mail_client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert Subscription.objects.get().status == SubscriptionStatus.UNSUBSCRIBED
    with django_assert_num_queries(4):  # again: nothing to update, so it checks the subscription exists
        response = mail_client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200


@pytest.mark.parametrize("url", ["/", "/subscribe/"])
def test_the_time_zone_select_is_built_without_a_template_per_option(client, url):
    NewsletterFactory()
    response = client.get(url)
    rendered = {template.name for template in response.templates}
    assert "django/forms/widgets/select_option.html" not in rendered
    body = response.content.decode()
    assert body.count("<option ") > 400  # every zone is still offered...
    assert '<label for="id_timezone">Time zone</label>' in body
    assert '<option value="UTC" selected>UTC</option>' in body  # ...UTC until the browser says otherwise


def test_a_refused_form_keeps_the_chosen_zone(client):
    cache.clear()
    newsletter = NewsletterFactory()
    response = client.post(
        "/subscribe/",
        {"email": "nope", "timezone": "Asia/Tokyo", f"nl_{newsletter.pk}": "on", f"freq_{newsletter.pk}": "daily"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert '<option value="Asia/Tokyo" selected>' in body and body.count(" selected>") == 2  # zone and frequency
