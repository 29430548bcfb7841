"""Link counts without tracking people: links through a signed redirect, counted per issue and link."""

import re

import pytest
from django.core import signing
from django.core.cache import cache
from django.urls import reverse

from digest.link_tokens import SALT, link_token
from digest.models import LinkCount
from tests.digest.conftest import at, body

pytestmark = pytest.mark.django_db

ARTICLE = "https://blog.example.org/posts/2026/launch?utm=x&y=1"
BODY = f"We [launched]({ARTICLE}). Write to [us](mailto:team@example.org), see [below](#more).\n\n## More {{#more}}\n"


@pytest.fixture(autouse=True)
def _clean_cache(settings):
    cache.clear()
    settings.SITE_URL = "https://news.example.com"


def digest_of(world, *, count_links: bool):
    world.newsletter.count_links = count_links
    world.newsletter.save()
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Launch", at(2026, 6, 1, 12, 0), body=BODY)
    assert world.run(at(2026, 6, 2, 8, 5)).sent == 1
    [message] = world.inbox("ada@example.com")
    return message


def redirect_path(html: str) -> str:
    return re.search(r'href="https://news\.example\.com(/l/[^"]+/)"', html).group(1)


def test_links_go_through_the_counting_redirect_only_when_the_newsletter_asks(world):
    message = digest_of(world, count_links=True)
    html, text = body(message, "html"), body(message, "plain")
    path = redirect_path(html)
    assert ARTICLE not in html.replace("&amp;", "&")  # the article's own URL is not in the mail
    assert f"https://news.example.com{path}" in text  # the text part links the same way
    assert 'href="mailto:team@example.org"' in html and 'href="#more"' in html  # not web links: left alone


def test_without_count_links_the_mail_links_straight_to_the_site(world):
    html = body(digest_of(world, count_links=False), "html").replace("&amp;", "&")
    assert ARTICLE in html and "/l/" not in html


def test_following_counts_per_link_and_redirects_there(client, world):
    path = redirect_path(body(digest_of(world, count_links=True), "html"))
    for _ in range(2):
        answer = client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)")
        assert answer.status_code == 302 and answer["Location"] == ARTICLE
        assert answer["Cache-Control"] == "no-store" and answer["Referrer-Policy"] == "no-referrer"
    counted = LinkCount.objects.get()
    assert (counted.url, counted.clicks, counted.scanner_clicks) == (ARTICLE, 2, 0)
    # Nothing in the count points at a reader.
    assert {field.name for field in LinkCount._meta.get_fields()} == {
        "id",
        "issue",
        "url",
        "url_hash",
        "clicks",
        "scanner_clicks",
        "last_at",
    }


def test_scanners_are_counted_apart(client, world):
    issue_id = world.publish("Links", at(2026, 6, 1, 12, 0)).pk
    browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    path = reverse("link_follow", kwargs={"token": link_token(issue_id=issue_id, url=ARTICLE)})
    client.head(path, HTTP_USER_AGENT=browser)  # a HEAD request only checks the link
    client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Barracuda Sentinel)")
    client.get(path)  # no user agent at all
    assert LinkCount.objects.values_list("clicks", "scanner_clicks").get() == (0, 3)
    # One client following three links of one issue within seconds: the third on is a scanner.
    for n in range(4):
        url = f"https://example.org/{n}"
        client.get(
            reverse("link_follow", kwargs={"token": link_token(issue_id=issue_id, url=url)}), HTTP_USER_AGENT=browser
        )
    counts = dict(LinkCount.objects.exclude(url=ARTICLE).values_list("url", "scanner_clicks"))
    assert counts == {
        "https://example.org/0": 0,
        "https://example.org/1": 0,
        "https://example.org/2": 1,
        "https://example.org/3": 1,
    }


def forged_tokens() -> list[str]:
    ours = link_token(issue_id=1, url="https://example.org/")
    theirs = link_token(issue_id=1, url="https://evil.example/")
    return [
        "not-a-token",
        theirs.split(":")[0] + ":" + ours.split(":")[1],  # another URL under our link's signature
        signing.Signer(salt="another.purpose").sign_object({"i": 1, "u": "https://evil.example/"}, compress=True),
        signing.Signer(key="not-our-secret", salt=SALT).sign_object({"i": 1, "u": "https://evil.example/"}),
    ]


def test_a_token_that_is_not_ours_redirects_nowhere_and_counts_nothing(client):
    for token in forged_tokens():
        answer = client.get(f"/l/{token}/")
        assert answer.status_code == 404 and "Location" not in answer, token
    assert not LinkCount.objects.exists()


def test_only_web_addresses_are_followed(client, world):
    issue_id = world.publish("Links", at(2026, 6, 1, 12, 0)).pk
    token = link_token(issue_id=issue_id, url="javascript:alert(1)")  # signed, but never made by rendering
    assert client.get(f"/l/{token}/").status_code == 404


def test_the_issue_report_lists_the_links_followed(client, admin_client, world):
    path = redirect_path(body(digest_of(world, count_links=True), "html"))
    client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (Macintosh) Safari/605")
    issue = LinkCount.objects.get().issue
    page = admin_client.get(reverse("admin:newsletters_issue_report", args=[issue.pk])).content.decode()
    assert "Links followed" in page and "blog.example.org/posts/2026/launch" in page
    assert re.search(r"launch\?utm=x&amp;y=1</a></td><td>1</td><td>0</td>", page)
