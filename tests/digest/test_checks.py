"""DMARC alignment, offline: DKIM's d= and the bounce domain against each From domain."""

import io
import re

import pytest
from django.core.management import call_command

from digest.checks import check_alignment
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


def test_aligned_domains_give_no_warning(settings):
    settings.DIGEST_DKIM_DOMAIN = "mail.example.co.uk"
    settings.DIGEST_BOUNCE_ADDRESS = "bounces@bounce.example.co.uk"
    settings.DEFAULT_FROM_EMAIL = "Digest <digest@news.example.co.uk>"
    NewsletterFactory(slug="weekly", from_email="News <news@example.co.uk>")
    NewsletterFactory(slug="default-from", from_email="")
    assert check_alignment(None) == []


def test_each_from_domain_that_does_not_align_is_named_once_per_setting(settings):
    settings.DIGEST_DKIM_DOMAIN = "news.example.com"
    settings.DIGEST_BOUNCE_ADDRESS = "bounces@esp-mail.net"
    settings.DEFAULT_FROM_EMAIL = "Digest <digest@example.com>"
    NewsletterFactory(name="Aligned", from_email="News <news@example.com>")
    NewsletterFactory(name="Other", from_email="Other <hello@other.org>")
    NewsletterFactory(name="Lookalike", from_email="x@example.co.uk")  # not example.com's
    warnings = check_alignment(None)
    found = sorted((w.id, re.search(r"From domain of .* is ([a-z.-]+): ", w.msg).group(1)) for w in warnings)
    assert found == [
        ("digest.W007", "example.co.uk"),
        ("digest.W007", "other.org"),
        ("digest.W008", "example.co.uk"),
        ("digest.W008", "example.com"),
        ("digest.W008", "other.org"),
    ]
    other = next(w for w in warnings if w.id == "digest.W007" and "other.org" in w.msg)
    assert "DIGEST_DKIM_DOMAIN" in other.msg and "'Other'" in other.msg and "DMARC" in other.msg


def test_without_newsletters_default_from_email_is_checked_and_nothing_without_the_settings(settings):
    settings.DEFAULT_FROM_EMAIL = "digest@example.org"
    assert check_alignment(None) == []  # neither DKIM nor a bounce address: nothing to align
    settings.DIGEST_DKIM_DOMAIN = "news.example.com"
    (warning,) = check_alignment(None)
    assert warning.id == "digest.W007" and "DEFAULT_FROM_EMAIL" in warning.msg


def test_check_deploy_shows_it(settings, smtp_server):
    settings.DIGEST_BOUNCE_ADDRESS = "bounces@esp-mail.net"
    NewsletterFactory(slug="weekly", from_email="News <news@example.com>")
    out, err = io.StringIO(), io.StringIO()
    call_command("check", "--deploy", stdout=out, stderr=err)
    assert "digest.W008" in out.getvalue() + err.getvalue()
