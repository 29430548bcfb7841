"""newsletters.conf: NEWSLETTERS_* settings from Django's settings or the environment; the site's address."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from newsletters.conf import newsletters_settings, site_domain, site_url


def test_a_setting_comes_from_settings_then_the_environment_then_the_default(settings, monkeypatch):
    assert newsletters_settings.CONFIRM_MAX_AGE_DAYS == 7
    monkeypatch.setenv("NEWSLETTERS_CONFIRM_MAX_AGE_DAYS", "3")
    assert newsletters_settings.CONFIRM_MAX_AGE_DAYS == 3
    settings.NEWSLETTERS_CONFIRM_MAX_AGE_DAYS = 5
    assert newsletters_settings.CONFIRM_MAX_AGE_DAYS == 5


@pytest.mark.parametrize(("raw", "message"), [("soon", "is not an integer"), ("0", "must be at least 1")])
def test_a_wrong_value_names_the_variable(monkeypatch, raw, message):
    monkeypatch.setenv("NEWSLETTERS_RATE_PER_CLIENT", raw)
    with pytest.raises(ImproperlyConfigured, match=f"NEWSLETTERS_RATE_PER_CLIENT.*{message}"):
        newsletters_settings.check_all()


def test_site_url_and_domain(settings):
    settings.SITE_URL = "https://news.example.org"
    assert site_url("/n/weekly/") == "https://news.example.org/n/weekly/"
    assert site_domain() == "news.example.org"
