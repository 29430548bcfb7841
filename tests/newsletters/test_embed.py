"""The embeddable subscribe form: cross-site posts, redirects back to allowed origins, JSON with CORS, the snippet."""

import re

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client

from newsletters.validators import origins_parse
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
BLOG = "https://blog.example.com"


@pytest.fixture(autouse=True)
def _fresh(settings):
    cache.clear()
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def weekly():
    return NewsletterFactory(name="Weekly Notes", slug="weekly", embed_origins=f"{BLOG}\nhttp://localhost:4000")


def cross_site(client=None, *, origin=BLOG, accept=None, **fields):
    """A post as a browser sends it from another site's page: no cookie, no CSRF token."""
    client = client or Client(enforce_csrf_checks=True)
    headers = {"Origin": origin} | ({"Accept": accept} if accept else {})
    return client.post("/embed/subscribe/", fields, headers=headers)


def test_a_plain_form_from_an_allowed_site_subscribes_and_goes_back(smtp_server, weekly):
    answer = cross_site(email="ada@example.org", newsletter="weekly", next=f"{BLOG}/thanks/")
    assert answer.status_code == 302 and answer["Location"] == f"{BLOG}/thanks/"
    [mail] = smtp_server.received
    assert mail.recipients == ["ada@example.org"]
    assert "/confirm/" in mail.message.get_body(("plain",)).get_content()


def test_next_on_another_site_is_not_followed(smtp_server, weekly):
    answer = cross_site(email="ada@example.org", newsletter="weekly", next="https://evil.example/phish")
    assert answer.status_code == 302 and answer["Location"] == "/subscribe/sent/"


def test_json_answers_carry_cors_only_for_allowed_origins(smtp_server, weekly):
    answer = cross_site(email="ada@example.org", newsletter="weekly", accept="application/json")
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert answer["Access-Control-Allow-Origin"] == BLOG and "Origin" in answer["Vary"]
    other = cross_site(
        origin="https://evil.example", email="bob@example.org", newsletter="weekly", accept="application/json"
    )
    assert "Access-Control-Allow-Origin" not in other


def test_preflight_allows_listed_origins_only(weekly):
    client = Client()
    ok = client.options("/embed/subscribe/", headers={"Origin": BLOG, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok["Access-Control-Allow-Origin"] == BLOG
    assert "POST" in ok["Access-Control-Allow-Methods"]
    no = client.options("/embed/subscribe/", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in no


def test_the_answer_is_the_same_for_a_known_address(smtp_server, weekly):
    SubscriptionFactory(subscriber=SubscriberFactory(email="known@example.org"), newsletter=weekly)
    known = cross_site(email="known@example.org", newsletter="weekly", accept="application/json")
    unknown = cross_site(email="new@example.org", newsletter="weekly", accept="application/json")
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)


def test_bad_input_is_refused_and_sends_nothing(smtp_server, weekly):
    assert cross_site(email="not an address", newsletter="weekly", accept="application/json").status_code == 400
    assert cross_site(email="ada@example.org", newsletter="nope", accept="application/json").status_code == 400
    page = cross_site(email="ada@example.org", newsletter="weekly", frequency="hourly", next=f"{BLOG}/")
    assert page.status_code == 400 and f'href="{BLOG}/"'.encode() in page.content
    assert Client().get("/embed/subscribe/").status_code == 405
    assert smtp_server.received == []


def test_the_confirmation_mail_names_the_chosen_frequency(smtp_server, weekly):
    cross_site(email="ada@example.org", newsletter="weekly", frequency="daily", timezone="Mars/Olympus")
    text = smtp_server.received[0].message.get_body(("plain",)).get_content()
    assert "Weekly Notes (daily)" in text


def test_origins_are_checked_when_saved():
    assert origins_parse("https://Blog.Example.com/\nhttp://localhost:4000") == [
        "https://blog.example.com",
        "http://localhost:4000",
    ]
    for bad in ["blog.example.com", "https://blog.example.com/page", "ftp://x.example", "https://x.example:99999"]:
        with pytest.raises(ValidationError, match="not an origin"):
            origins_parse(bad)


def test_the_admin_page_shows_the_snippet(weekly):
    client = Client()
    client.force_login(User.objects.create_superuser("editor", "e@example.com", "pw"))
    page = client.get(f"/admin/newsletters/newsletter/{weekly.pk}/change/").content.decode()
    snippet = re.search(r"<pre[^>]*><code>(.*?)</code>", page, re.S).group(1)
    assert "action=&quot;http://testserver/embed/subscribe/&quot;" in snippet
    assert "name=&quot;website&quot;" in snippet and f"value=&quot;{BLOG}/&quot;" in snippet
