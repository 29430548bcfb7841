"""Public pages that bring readers: share tags, canonical links, the subscribe box, sitemap.xml."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.core.cache import cache

from newsletters.models import IssueStatus
from tests.factories import IssueFactory, NewsletterFactory

pytestmark = pytest.mark.django_db
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture(autouse=True)
def _site(settings):
    cache.clear()
    settings.SITE_URL = "https://news.example.org"
    settings.ALLOWED_HOSTS = ["testserver", "news.example.org"]


def meta(html: str, attribute: str, name: str) -> str:
    found = re.findall(rf'<meta {attribute}="{re.escape(name)}" content="([^"]*)">', html)
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def test_an_issue_page_describes_itself_for_search_engines_and_chat_apps(client):
    weekly = NewsletterFactory(name="Weekly Notes", slug="weekly")
    issue = IssueFactory(newsletter=weekly, slug="mailers", title="Mailers & more", body="Django 6.1 " + "word " * 80)
    html = client.get("/n/weekly/mailers/").content.decode()
    url = "https://news.example.org/n/weekly/mailers/"
    assert f'<link rel="canonical" href="{url}">' in html
    description = meta(html, "name", "description")
    assert description.startswith("Django 6.1 word") and description.endswith("…") and len(description) <= 160
    assert meta(html, "property", "og:description") == meta(html, "name", "twitter:description") == description
    assert meta(html, "property", "og:title") == meta(html, "name", "twitter:title") == "Mailers &amp; more"
    assert meta(html, "property", "og:url") == url
    assert meta(html, "property", "og:type") == "article"
    assert meta(html, "name", "twitter:card") == "summary"
    assert meta(html, "property", "article:published_time") == issue.publish_at.isoformat()
    # The preheader, when the editor wrote one, is the description.
    IssueFactory(newsletter=weekly, slug="short", preheader="In short: mail.")
    assert meta(client.get("/n/weekly/short/").content.decode(), "name", "description") == "In short: mail."


def test_archive_pages_are_canonical_per_page_and_described(client):
    weekly = NewsletterFactory(name="Weekly Notes", slug="weekly", description="Release notes and tips.")
    IssueFactory.create_batch(21, newsletter=weekly)
    first = client.get("/n/weekly/").content.decode()
    assert '<link rel="canonical" href="https://news.example.org/n/weekly/">' in first
    assert meta(first, "name", "description") == "Release notes and tips."
    second = client.get("/n/weekly/?page=2").content.decode()
    assert '<link rel="canonical" href="https://news.example.org/n/weekly/?page=2">' in second


def test_issue_and_archive_pages_carry_a_subscribe_box_that_works(client, smtp_server):
    weekly = NewsletterFactory(name="Weekly Notes", slug="weekly")
    IssueFactory(newsletter=weekly, slug="one")
    for path in ("/n/weekly/", "/n/weekly/one/"):
        html = client.get(path).content.decode()
        box = re.search(r'<aside class="subscribe-box".*?</aside>', html, re.S).group(0)
        assert 'action="/embed/subscribe/"' in box and 'value="weekly"' in box
        assert '<label for="box-email">Email address</label>' in box
    answer = client.post("/embed/subscribe/", {"newsletter": "weekly", "email": "ada@example.org", "timezone": ""})
    assert answer.status_code == 302 and answer["Location"] == "/subscribe/sent/"
    assert smtp_server.received[0].recipients == ["ada@example.org"]


def test_sitemap_lists_archives_and_visible_issues_at_site_url(client):
    weekly = NewsletterFactory(slug="weekly")
    NewsletterFactory(slug="hidden", active=False)
    IssueFactory(newsletter=weekly, slug="out")
    IssueFactory(newsletter=weekly, slug="draft", status=IssueStatus.DRAFT, publish_at=None)
    answer = client.get("/sitemap.xml")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("application/xml")
    locations = [loc.text for loc in ET.fromstring(answer.content).iter(f"{SITEMAP}loc")]
    assert locations == ["https://news.example.org/n/weekly/", "https://news.example.org/n/weekly/out/"]


def test_sitemap_queries_do_not_grow_with_issues(client, django_assert_num_queries):
    weekly = NewsletterFactory(slug="weekly")
    IssueFactory.create_batch(30, newsletter=weekly)
    with django_assert_num_queries(4):  # per sitemap: a count for its paging, then its rows
        client.get("/sitemap.xml")


def test_the_share_tags_escape_what_editors_write(client):
    NewsletterFactory(slug="weekly", description='"><script>alert(1)</script>')
    html = client.get("/n/weekly/").content.decode()
    assert "<script>alert(1)" not in html
    assert meta(html, "name", "description") == "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
