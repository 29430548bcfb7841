"""SSRF: endpoint URLs inside this server's own network are refused when saved and when delivered."""

import socket

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from hooks.addresses import address_resolve, url_check
from hooks.checks import check_private_addresses
from hooks.exceptions import EndpointRefused
from hooks.models import Endpoint
from tests.factories import NewsletterFactory


@pytest.fixture(autouse=True)
def _production(settings):
    settings.HOOKS_ALLOW_PRIVATE = 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost/hooks",
        "http://api.localhost/",
        "http://10.0.0.8/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_non_public_addresses_are_refused(url):
    with pytest.raises(EndpointRefused, match="HOOKS_ALLOW_PRIVATE"):
        url_check(url)


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http://", "http://[::1"])
def test_what_is_not_an_http_url_is_refused(url):
    with pytest.raises(EndpointRefused):
        url_check(url)


def test_a_name_that_resolves_to_this_machine_is_refused_at_delivery():
    host = socket.gethostname()
    if host == "localhost":
        pytest.skip("no host name besides localhost")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, 80)}
    except socket.gaierror:
        pytest.skip(f"{host} does not resolve here")
    url_check(f"http://{host}/")  # a name passes when saved…
    if not any(address.startswith(("127.", "10.", "192.168.", "172.", "::1", "fe80")) for address in addresses):
        pytest.skip(f"{host} resolves to public {addresses}")
    with pytest.raises(EndpointRefused, match="resolves to non-public"):
        address_resolve(f"http://{host}/")  # …and refused on what it resolves to


def test_public_addresses_pass():
    url_check("https://93.184.215.14/hooks")
    url_check("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/")
    url_check("https://crm.example.com/hooks/digest?source=digest")


@pytest.mark.django_db
def test_the_model_refuses_bad_urls_and_events_with_clear_errors():
    endpoint = Endpoint(newsletter=NewsletterFactory(), url="http://127.0.0.1/", events=["issue.published", "bogus"])
    with pytest.raises(ValidationError) as raised:
        endpoint.full_clean(exclude=["secret"])
    assert "non-public address" in str(raised.value.message_dict["url"])
    assert raised.value.message_dict["events"] == ["Unknown event types: bogus."]
    endpoint.url, endpoint.events = "https://crm.example.com/hooks", []
    with pytest.raises(ValidationError) as raised:
        endpoint.full_clean(exclude=["secret"])
    assert list(raised.value.message_dict) == ["events"]
    assert not Endpoint.objects.exists()


def test_a_wrong_setting_and_private_addresses_in_production_are_reported(settings):
    settings.HOOKS_TIMEOUT = "soon"
    with pytest.raises(SystemCheckError, match="HOOKS_TIMEOUT must be a number"):
        call_command("check", "--tag", "hooks")
    settings.HOOKS_TIMEOUT, settings.DEBUG, settings.HOOKS_ALLOW_PRIVATE = 10, False, 1
    assert [warning.id for warning in check_private_addresses(None)] == ["hooks.W001"]
