"""A wrong API_* setting is named at start-up (manage.py check), not at the first call."""

from django.core import checks


def test_a_wrong_setting_is_named(settings):
    settings.API_RATE_PER_MINUTE = 0
    errors = [e for e in checks.run_checks(tags=["api"]) if e.id == "api.E001"]
    assert len(errors) == 1 and "API_RATE_PER_MINUTE must be at least 1" in errors[0].msg


def test_the_defaults_pass():
    assert checks.run_checks(tags=["api"]) == []
