import pytest

from tests.smtp import SMTPServer


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Keep each test's uploads and captured mail apart; hash test passwords fast."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LOCAL_MAIL_DIR = tmp_path / "mail"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback, wired in as both the default and the digest mailer."""
    with SMTPServer() as server:
        settings.MAILERS = {"default": server.mailer(), "digest": server.mailer()}
        yield server
