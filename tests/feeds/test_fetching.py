"""Feeds as a source: new items of RSS and Atom feeds become issues; bad feeds change nothing and say why."""

import datetime
import io

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from feeds.cron import fetch_feeds_job
from feeds.models import Feed, FeedItem, FeedMode
from feeds.services import feed_fetch
from newsletters.markup import markdown_to_html
from newsletters.models import Issue, IssueStatus
from newsletters.roles import EDITOR, OWNER
from tests.factories import NewsletterFactory
from tests.feeds.feedserver import SAMPLES, FeedServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    with FeedServer() as feeds:
        yield feeds


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def _feed(server, path="/blog.xml", **fields):
    return Feed.objects.create(newsletter=NewsletterFactory(name="Field"), url=server.url(path), **fields)


def test_the_first_fetch_notes_the_archive_and_later_posts_become_one_draft(server, now):
    server.serve("/blog.xml", "blog-rss2.xml")
    feed = _feed(server)
    assert feed_fetch(feed=feed, now=now) == "noted"
    assert Issue.objects.count() == 0 and FeedItem.objects.filter(feed=feed).count() == 2
    feed.refresh_from_db()
    assert feed.title == "Field Notes" and feed.last_fetched_at == now

    server.serve("/blog.xml", "blog-rss2-later.xml")
    later = now + datetime.timedelta(minutes=15)
    assert feed_fetch(feed=feed, now=later) == "issues"
    issue = Issue.objects.get()
    assert issue.status == IssueStatus.DRAFT and issue.newsletter == feed.newsletter
    assert issue.title == "Field Notes: 2 new posts"
    # Newest first, as the feed lists them; each a linked heading and its summary.
    html = markdown_to_html(issue.body)
    release = html.index("https://fieldnotes.example.org/2026/12/release-3-2/")
    brackets = html.index("https://fieldnotes.example.org/2026/12/brackets-%28and-parens%29/")
    assert release < brackets
    assert "Release notes: 3.2 &amp; the new importer" in html
    assert "why [brackets] and *stars* break our feed" in html
    assert "The importer now reads CSV *and* JSON." in html
    # Hostile summaries are sanitized like Markdown: no script, no javascript: link, no handler.
    for hostile in ["<script", "alert(", "javascript:", "onerror"]:
        assert hostile not in html and hostile not in issue.body, hostile
    assert "<h1" not in html and "# not a heading" in html
    assert set(FeedItem.objects.filter(issue=issue).values_list("guid", flat=True)) == {
        "fieldnotes-2026-12-07-release",
        "fieldnotes-2026-12-08-brackets",
    }

    # Nothing new: no issue, nothing recorded twice (GUIDs).
    assert feed_fetch(feed=feed, now=later + datetime.timedelta(minutes=15)) == "unchanged"
    assert Issue.objects.count() == 1 and FeedItem.objects.filter(feed=feed).count() == 4


def test_an_atom_feed_in_publish_mode_publishes_its_new_entry(server, now):
    document = (SAMPLES / "changelog-atom.xml").read_text()
    first_entry = document[document.index("  <entry>") : document.index("  </entry>") + len("  </entry>\n")]
    server.serve("/changes.atom", document.replace(first_entry, "").encode(), content_type="application/atom+xml")
    feed = _feed(server, "/changes.atom", mode=FeedMode.PUBLISH)
    assert feed_fetch(feed=feed, now=now) == "noted"
    server.serve("/changes.atom", "changelog-atom.xml", content_type="application/atom+xml")
    assert feed_fetch(feed=feed, now=now) == "issues"
    issue = Issue.objects.get()
    assert issue.title == "Webhooks retry with backoff"
    assert issue.status == IssueStatus.PUBLISHED and issue.publish_at == now
    assert "Failed webhooks are retried for 24 hours" in issue.body
    assert "(https://acme.example.com/changelog/webhook-retries)" in issue.body


def test_a_redirect_within_the_feeds_host_is_followed(server, now):
    server.serve("/blog.xml", "blog-rss2.xml")
    feed = _feed(server, "/moved.xml")
    assert feed_fetch(feed=feed, now=now) == "noted"


BAD = {
    "malformed": ("/broken.xml", "broken.xml", "not well-formed XML"),
    "not-a-feed": ("/page.html", "not-a-feed.html", "not an RSS or Atom feed"),
    "20-MB": ("/huge.xml", None, "larger than FEEDS_MAX_BYTES"),
    "20-MB-declared": ("/huge-declared.xml", None, "more than FEEDS_MAX_BYTES"),
    "timeout": ("/stall.xml", None, "did not answer within 0.5 s"),
    "other-host": ("/away.xml", None, "redirects to another host"),
    "missing": ("/gone.xml", None, "answered 404"),
}


@pytest.mark.parametrize("path,sample,message", BAD.values(), ids=BAD.keys())
def test_a_bad_feed_changes_nothing_and_says_why(server, now, settings, path, sample, message):
    settings.FEEDS_TIMEOUT = 0.5
    server.serve("/blog.xml", "blog-rss2.xml")
    feed = _feed(server)
    feed_fetch(feed=feed, now=now)  # a good fetch first: the feed has history to keep
    if sample:
        server.serve(path, sample, content_type="text/html" if sample.endswith(".html") else "application/rss+xml")
    Feed.objects.filter(pk=feed.pk).update(url=server.url(path))
    feed.refresh_from_db()
    items = list(FeedItem.objects.values_list("pk", flat=True))
    later = now + datetime.timedelta(minutes=15)

    assert feed_fetch(feed=feed, now=later) == "failed"

    feed.refresh_from_db()
    assert message in feed.last_error and feed.last_error_at == later
    assert feed.last_fetched_at == now and feed.title == "Field Notes"
    assert list(FeedItem.objects.values_list("pk", flat=True)) == items and Issue.objects.count() == 0


def test_the_error_shows_in_the_feeds_admin_list_and_clears_after_a_good_fetch(server, now, client):
    feed = _feed(server, "/broken.xml")
    server.serve("/broken.xml", "broken.xml")
    feed_fetch(feed=feed, now=now)
    editor = get_user_model().objects.create_user("eda", password="pw", is_staff=True)
    editor.groups.add(Group.objects.get(name=EDITOR))
    client.force_login(editor)
    page = client.get(reverse("admin:feeds_feed_changelist")).content.decode()
    assert "The feed is not well-formed XML" in page
    # Editors see feeds; owners add and change them.
    assert client.get(reverse("admin:feeds_feed_add")).status_code == 403
    editor.groups.set([Group.objects.get(name=OWNER)])
    assert client.get(reverse("admin:feeds_feed_add")).status_code == 200

    server.serve("/broken.xml", "blog-rss2.xml")
    feed_fetch(feed=feed, now=now)
    feed.refresh_from_db()
    assert feed.last_error == "" and feed.last_error_at is None


def test_the_cron_job_and_the_command_fetch_every_active_feed(server, now):
    server.serve("/blog.xml", "blog-rss2.xml")
    server.serve("/changes.atom", "changelog-atom.xml")
    active = _feed(server)
    idle = _feed(server, "/changes.atom", active=False)
    assert "feeds.cron.fetch_feeds_job" in [job[1] for job in settings.CRONJOBS]
    fetch_feeds_job()
    active.refresh_from_db()
    idle.refresh_from_db()
    assert active.last_fetched_at is not None and idle.last_fetched_at is None

    server.serve("/blog.xml", "blog-rss2-later.xml")
    out = io.StringIO()
    call_command("fetch_feeds", stdout=out)
    assert f"issues    {active.newsletter.slug} {active.url}" in out.getvalue()
    assert Issue.objects.filter(newsletter=active.newsletter).count() == 1


def test_a_failing_feed_shows_on_the_dashboard(server, now, client):
    feed = _feed(server, "/stall.xml")
    Feed.objects.filter(pk=feed.pk).update(
        last_error="The feed's server did not answer within 10 s.", last_error_at=now
    )
    _feed(server, "/fine.xml")  # no error: not listed
    editor = get_user_model().objects.create_user("eda", password="pw", is_staff=True)
    editor.groups.add(Group.objects.get(name=EDITOR))
    client.force_login(editor)
    page = client.get(reverse("dashboard")).content.decode()
    assert "1 feed cannot be read" in page
    assert "did not answer within 10 s" in page and reverse("admin:feeds_feed_change", args=[feed.pk]) in page
