"""The signup firewall: honeypot, proof-of-work challenge under a burst, limits, disposable and mail-less domains."""

import base64
import datetime
import json
import re

import pytest
from altcha import ChallengeV1, solve_challenge_v1
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from newsletters.firewall import client_network, domain_disposable
from newsletters.models import SignupRefusal, Subscriber
from tests.dnsserver import DnsServer
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings):
    cache.clear()
    settings.SITE_URL = "http://testserver"
    settings.NEWSLETTERS_CHALLENGE = "auto"
    settings.NEWSLETTERS_CHALLENGE_MAX_NUMBER = 2000  # a test solves it in Python


@pytest.fixture
def weekly():
    return NewsletterFactory(name="Weekly Notes", slug="weekly")


def post(client, newsletter, email, *, ip="203.0.113.7", as_json=False, **fields):
    data = {"email": email, "newsletter": newsletter.slug} | fields
    headers = {"Accept": "application/json"} if as_json else {}
    return client.post("/embed/subscribe/", data, REMOTE_ADDR=ip, headers=headers)


def refusals() -> dict[str, int]:
    return {row.reason: row.count for row in SignupRefusal.objects.all()}


def solved(client) -> str:
    """Fetch a challenge as the signup script does and solve it as a person's browser would."""
    c = client.get("/subscribe/challenge/").json()
    solution = solve_challenge_v1(
        ChallengeV1(c["algorithm"], c["challenge"], c["maxnumber"], c["salt"], c["signature"])
    )
    payload = {k: c[k] for k in ("algorithm", "challenge", "salt", "signature")} | {"number": solution.number}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_a_bot_posting_a_thousand_signups_gets_at_most_twenty_mails_and_a_person_still_subscribes(smtp_server, weekly):
    client = Client()
    for i in range(1000):
        # 50 addresses, from addresses all over the internet (the per-IP limit alone would not hold).
        post(client, weekly, f"victim{i % 50}@example.com", ip=f"198.{i % 250}.{i // 250}.9")
    bot_mails = len(smtp_server.received)
    assert 0 < bot_mails <= 20
    assert refusals()["challenge"] >= 1000 - 20

    # Under the burst, a person without the solution is asked for it, and gets no mail...
    asked = post(client, weekly, "person@example.org", ip="192.0.2.1")
    assert asked.status_code == 400
    assert b"One more step" in asked.content
    assert len(smtp_server.received) == bot_mails
    # ...and with it (what the page's script does) subscribes.
    answer = post(client, weekly, "person@example.org", ip="192.0.2.1", altcha=solved(client))
    assert answer.status_code == 302
    assert smtp_server.received[-1].recipients == ["person@example.org"]
    assert len(smtp_server.received) == bot_mails + 1


def test_a_script_is_told_in_json_to_solve_the_challenge(smtp_server, weekly, settings):
    settings.NEWSLETTERS_CHALLENGE = "always"
    client = Client()
    assert client.get("/subscribe/challenge/").json()["required"] is True
    answer = post(client, weekly, "ada@example.org", as_json=True)
    assert answer.status_code == 400
    assert answer.json() == {
        "ok": False,
        "message": "Many sign-ups are arriving: your browser needs a second to show it is not a robot, then send the form again.",
        "challenge": "/subscribe/challenge/",
    }
    assert post(client, weekly, "ada@example.org", as_json=True, altcha=solved(client)).json()["ok"] is True
    settings.NEWSLETTERS_CHALLENGE = "auto"
    assert client.get("/subscribe/challenge/").json()["required"] is False


def test_a_solution_works_once_and_a_forged_one_never(smtp_server, weekly, settings):
    settings.NEWSLETTERS_CHALLENGE = "always"
    client = Client()
    payload = solved(client)
    assert post(client, weekly, "a@example.org", altcha=payload).status_code == 302
    assert post(client, weekly, "b@example.org", altcha=payload).status_code == 400
    forged = json.loads(base64.b64decode(payload)) | {"signature": "0" * 64}
    forged = base64.b64encode(json.dumps(forged).encode()).decode()
    assert post(client, weekly, "c@example.org", altcha=forged).status_code == 400
    hostile = [b"[]", b"1", b'"x"', b'{"algorithm": "SHA-256", "challenge": 1, "number": "x", "salt": null}', b"\xff"]
    for raw in [base64.b64encode(value).decode() for value in hostile] + ["not base64 !"]:
        assert post(client, weekly, "d@example.org", altcha=raw).status_code == 400
    assert [m.recipients for m in smtp_server.received] == [["a@example.org"]]


def test_the_honeypot_answers_like_success_and_sends_nothing(smtp_server, weekly):
    answer = post(Client(), weekly, "ada@example.org", website="http://spam.example")
    assert answer.status_code == 302 and answer["Location"] == "/subscribe/sent/"
    assert smtp_server.received == []
    assert refusals() == {"honeypot": 1}


def test_the_site_form_has_the_honeypot_too(smtp_server, weekly):
    data = {"email": "ada@example.org", "timezone": "UTC", f"nl_{weekly.pk}": "on", f"freq_{weekly.pk}": "daily"}
    answer = Client().post("/subscribe/", data | {"website": "x"})
    assert answer.status_code == 302
    assert smtp_server.received == []
    assert Client().post("/subscribe/", data).status_code == 302
    assert len(smtp_server.received) == 1


def test_disposable_domains_are_refused_with_a_reason(smtp_server, weekly):
    assert domain_disposable("mailinator.com") and domain_disposable("x.mailinator.com")
    assert not domain_disposable("example.org")
    answer = post(Client(), weekly, "ada@mailinator.com", as_json=True)
    assert answer.status_code == 400
    assert "disposable" in answer.json()["message"]
    assert smtp_server.received == []
    assert refusals() == {"disposable": 1}


@pytest.fixture
def dns(settings):
    records = {
        ("mail.example", "MX"): ["10 mx.mail.example"],
        ("web.example", "A"): ["192.0.2.10"],
        ("web.example", "TXT"): ["v=spf1 -all"],
        ("nullmx.example", "MX"): ["0 ."],
        ("nullmx.example", "A"): ["192.0.2.11"],
    }
    with DnsServer(records) as server:
        settings.NEWSLETTERS_MAIL_DOMAIN_CHECK = "on"
        settings.NEWSLETTERS_DNS_RESOLVER = server.address
        yield server


@pytest.mark.parametrize(
    ("domain", "accepted"),
    [("mail.example", True), ("web.example", True), ("nullmx.example", False), ("nowhere.example", False)],
)
def test_domains_without_mx_or_address_are_refused(smtp_server, weekly, dns, domain, accepted):
    answer = post(Client(), weekly, f"ada@{domain}", as_json=True)
    assert answer.json()["ok"] is accepted
    assert len(smtp_server.received) == int(accepted)
    if not accepted:
        assert "does not receive mail" in answer.json()["message"]
        assert refusals() == {"no_mail": 1}


def test_a_silent_resolver_lets_the_request_through(smtp_server, weekly, settings):
    settings.NEWSLETTERS_MAIL_DOMAIN_CHECK = "on"
    settings.NEWSLETTERS_DNS_RESOLVER = "127.0.0.1:9"  # nothing answers: the confirmation mail decides
    assert post(Client(), weekly, "ada@mail.example", as_json=True).json()["ok"] is True


def test_limits_per_network_and_per_domain(smtp_server, weekly, settings):
    settings.NEWSLETTERS_CHALLENGE = "never"
    settings.NEWSLETTERS_RATE_PER_NETWORK = 3
    settings.NEWSLETTERS_RATE_PER_DOMAIN = 4
    client = Client()
    codes = [post(client, weekly, f"r{i}@one.example", ip=f"203.0.113.{i}").status_code for i in range(4)]
    assert codes == [302, 302, 302, 400]  # four clients, one /24
    assert client_network("203.0.113.77") == "203.0.113.0/24"
    assert client_network("2001:db8:1:2::5") == "2001:db8:1::/48"
    codes = [post(client, weekly, f"s{i}@two.example", ip=f"198.51.{i}.1").status_code for i in range(5)]
    assert codes == [302, 302, 302, 302, 400]  # four mails to one domain, then no more
    assert len(smtp_server.received) == 7
    assert refusals() == {"network": 1, "domain": 1}
    assert Subscriber.objects.count() == 0  # nothing is stored before confirmation


def test_wrong_settings_name_themselves(weekly, settings):
    settings.NEWSLETTERS_CHALLENGE = "sometimes"
    with pytest.raises(ImproperlyConfigured, match="NEWSLETTERS_CHALLENGE"):
        post(Client(), weekly, "ada@example.org")
    settings.NEWSLETTERS_CHALLENGE = "never"
    settings.NEWSLETTERS_MAIL_DOMAIN_CHECK = "on"
    settings.NEWSLETTERS_DNS_RESOLVER = "dns.example"
    with pytest.raises(ImproperlyConfigured, match="NEWSLETTERS_DNS_RESOLVER"):
        post(Client(), weekly, "ada@example.org")


def test_the_dashboard_counts_refusals_of_the_last_seven_days(client, weekly, settings):
    SignupRefusal.objects.create(day=timezone.localdate() - datetime.timedelta(days=7), reason="honeypot", count=50)
    for _ in range(3):
        post(Client(), weekly, "ada@mailinator.com")
    post(Client(), weekly, "bob@example.org", website="filled")
    client.force_login(User.objects.create_superuser("editor", "e@example.com", "pw"))
    settings.NEWSLETTERS_CHALLENGE = "always"
    page = client.get("/admin/dashboard/").content.decode()
    card = re.search(r'<h2 id="signup-heading">.*?</section>', page, re.S).group(0)
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td>(?:<strong>)?(\d+)', card))
    assert rows["Disposable domain"] == "3" and rows["Honeypot field filled"] == "1"  # not last week's 50
    assert rows["All"] == "4"
    assert "<strong>on</strong>" in card
