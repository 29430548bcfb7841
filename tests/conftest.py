import os
import shutil

import pytest
from django.utils import translation

from tests.smtp import SMTPServer


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Keep each test's uploads and captured mail apart; hash test passwords fast."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LOCAL_MAIL_DIR = tmp_path / "mail"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The signup firewall's DNS check and burst challenge off: tests/newsletters/test_firewall.py turns them on.
    settings.NEWSLETTERS_MAIL_DOMAIN_CHECK = "off"
    settings.NEWSLETTERS_CHALLENGE = "never"
    yield
    # A view that shows a reader's page in their language activates it for the thread
    # (newsletters.languages.reader_activate); the next test starts in LANGUAGE_CODE's.
    translation.deactivate()


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback, wired in as both the default and the digest mailer."""
    with SMTPServer() as server:
        settings.MAILERS = {"default": server.mailer(), "digest": server.mailer()}
        yield server


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chromium():
    """Debian's Chromium under Playwright (browser downloads are not possible here)."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; `make browser` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing; `make browser` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()
