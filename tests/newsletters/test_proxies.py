"""Trusted proxies: behind nginx each visitor has a rate limit of their own; nobody else can choose theirs."""

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command

from newsletters.checks import check_rate_limits, check_settings
from newsletters.proxies import client_address
from tests.factories import NewsletterFactory

TRUSTED = "127.0.0.1, ::1, 10.0.0.0/8"

# (REMOTE_ADDR, X-Forwarded-For, the client the rate limits count)
CASES = [
    ("203.0.113.9", "", "203.0.113.9"),  # no proxy
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # a client writing the header itself: ignored
    ("127.0.0.1", "198.51.100.1", "198.51.100.1"),  # nginx on the same machine
    ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own entry is left of nginx's
    ("10.1.2.3", "198.51.100.1, 10.9.9.9", "198.51.100.1"),  # two trusted proxies
    ("::1", "2001:db8::7", "2001:db8::7"),
    ("127.0.0.1", "[2001:db8::7]", "2001:db8::7"),
    ("127.0.0.1", "10.0.0.5, 127.0.0.1", "10.0.0.5"),  # every hop trusted: the leftmost
    ("127.0.0.1", "not-an-address", "127.0.0.1"),  # a broken header: the proxy itself
    ("127.0.0.1", "198.51.100.1, junk", "127.0.0.1"),
    ("127.0.0.1", ",".join(["198.51.100.1"] * 10_000), "198.51.100.1"),
]


@pytest.mark.parametrize(("remote", "forwarded", "client"), CASES)
def test_the_client_is_the_rightmost_untrusted_address(settings, remote, forwarded, client):
    settings.NEWSLETTERS_TRUSTED_PROXIES = TRUSTED
    assert client_address({"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}) == client


def test_without_the_setting_no_header_is_believed(settings):
    settings.NEWSLETTERS_TRUSTED_PROXIES = ""
    assert client_address({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}) == "127.0.0.1"


@pytest.mark.parametrize("value", ["nginx", "127.0.0.1,,localhost", "10.0.0.0/33"])
def test_a_wrong_setting_is_an_error_naming_it(settings, value):
    settings.NEWSLETTERS_TRUSTED_PROXIES = value
    [error] = check_settings(None)
    assert error.id == "newsletters.E001" and "NEWSLETTERS_TRUSTED_PROXIES" in error.msg


def _subscribe(client, newsletter, n: int, **headers):
    data = {"email": f"r{n}@example.com", "name": "R", "timezone": "UTC", f"nl_{newsletter.pk}": "on"}
    data[f"freq_{newsletter.pk}"] = "daily"
    return client.post("/subscribe/", data, REMOTE_ADDR="127.0.0.1", **headers).status_code


@pytest.mark.django_db
def test_behind_nginx_each_visitor_has_a_limit_of_their_own(client, settings):
    """M1: every visitor was 127.0.0.1, so 20 requests from anyone locked everyone out for an hour."""
    cache.clear()
    settings.NEWSLETTERS_TRUSTED_PROXIES = "127.0.0.1"
    settings.NEWSLETTERS_RATE_PER_CLIENT = 3
    newsletter = NewsletterFactory()
    noisy = [_subscribe(client, newsletter, n, HTTP_X_FORWARDED_FOR="198.51.100.1") for n in range(4)]
    assert noisy == [302, 302, 302, 429]
    # Others are not locked out, and the noisy one cannot escape by writing the header itself.
    assert _subscribe(client, newsletter, 10, HTTP_X_FORWARDED_FOR="198.51.100.2") == 302
    assert _subscribe(client, newsletter, 11, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.1") == 429
    assert len(mail.outbox) == 4


def test_check_deploy_warns_about_per_process_counters_and_an_untrusted_proxy(settings):
    settings.DEBUG = False
    settings.NEWSLETTERS_TRUSTED_PROXIES = ""
    cache.clear()
    assert [warning.id for warning in check_rate_limits(None)] == ["newsletters.W003"]  # locmem://
    client_address({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"})
    warnings = check_rate_limits(None)
    assert [warning.id for warning in warnings] == ["newsletters.W003", "newsletters.W004"]
    assert "NEWSLETTERS_TRUSTED_PROXIES=127.0.0.1" in warnings[1].hint
    settings.DEBUG = True
    assert check_rate_limits(None) == []


def test_a_client_on_the_internet_writing_the_header_is_not_taken_for_a_proxy(settings):
    settings.DEBUG = False
    cache.clear()
    # (203.0.113.0/24 and the other documentation ranges count as private in Python.)
    client_address({"REMOTE_ADDR": "8.8.8.8", "HTTP_X_FORWARDED_FOR": "198.51.100.1"})
    assert [warning.id for warning in check_rate_limits(None)] == ["newsletters.W003"]


@pytest.mark.django_db
def test_manage_py_check_deploy_shows_them(settings, capsys):
    settings.DEBUG = False
    cache.clear()
    call_command("check", "--deploy", "--tag", "newsletters")
    assert "newsletters.W003" in capsys.readouterr().err
