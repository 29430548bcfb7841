"""DNS servers named in a setting."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.nameservers import nameservers_parse


def test_servers_with_and_without_ports():
    assert nameservers_parse("127.0.0.1:5353, [::1]:53, 9.9.9.9,", setting="X_DNS") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("9.9.9.9", 53),
    ]
    assert nameservers_parse("", setting="X_DNS") == []


@pytest.mark.parametrize("value", ["dns.example", "127.0.0.1:port", "[::1"])
def test_a_wrong_server_names_the_setting(value):
    with pytest.raises(ImproperlyConfigured, match="^X_DNS: "):
        nameservers_parse(value, setting="X_DNS")
