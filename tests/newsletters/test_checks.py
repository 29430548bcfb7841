"""System checks of newsletters: outside DEBUG, each newsletter has a postal address and a real sender."""

import pytest

from newsletters.checks import check_senders
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


def test_production_warns_about_a_missing_postal_address_and_a_localhost_sender(settings):
    settings.DEBUG = False
    settings.DEFAULT_FROM_EMAIL = "Digest <digest@localhost>"
    NewsletterFactory(slug="ready", postal_address="1 Main St\nSpringfield", from_email="News <news@example.com>")
    NewsletterFactory(slug="no-address", postal_address="  ", from_email="News <news@example.com>")
    NewsletterFactory(slug="local", postal_address="1 Main St", from_email="News <news@LOCALHOST>")
    NewsletterFactory(slug="default-from", postal_address="1 Main St", from_email="")
    NewsletterFactory(slug="inactive", postal_address="", from_email="x@localhost", active=False)
    warnings = check_senders(None)
    assert [(w.id, w.obj.slug) for w in warnings] == [
        ("newsletters.W002", "default-from"),
        ("newsletters.W002", "local"),
        ("newsletters.W001", "no-address"),
    ]
    assert "DEFAULT_FROM_EMAIL" in warnings[0].msg and "CAN-SPAM" in warnings[2].hint


def test_development_does_not_warn(settings):
    settings.DEBUG = True
    NewsletterFactory(postal_address="", from_email="x@localhost")
    assert check_senders(None) == []


def test_manage_py_check_shows_the_warning(settings, capsys):
    from django.core.management import call_command

    settings.DEBUG = False
    settings.SITE_URL = "https://news.example.com"
    NewsletterFactory(slug="weekly", postal_address="", from_email="News <news@example.com>")
    call_command("check")
    assert "newsletters.W001" in capsys.readouterr().err
