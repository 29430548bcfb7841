"""Every NEWSLETTERS_* setting with its default, and the site's address, read in one place.

Each may be set in Django's settings or as an environment variable of the same name
(project.app_settings).
"""

from urllib.parse import urlsplit

from django.conf import settings

from project.app_settings import AppSettings, Setting

newsletters_settings = AppSettings(
    "NEWSLETTERS_",
    {
        # Days a confirmation link stays valid.
        "NEWSLETTERS_CONFIRM_MAX_AGE_DAYS": Setting(7, int, 1),
        # Confirmation mails per address, and subscribe requests per client (IP), per period.
        "NEWSLETTERS_RATE_PER_ADDRESS": Setting(3, int, 1),
        "NEWSLETTERS_RATE_PER_CLIENT": Setting(20, int, 1),
        "NEWSLETTERS_RATE_PERIOD": Setting(3600, int, 1),
        # Largest single attachment an editor may upload, in bytes.
        "NEWSLETTERS_MAX_ATTACHMENT_BYTES": Setting(10 * 1024 * 1024, int, 0),
        # The media library (newsletters.images): largest image file an editor may upload, in
        # bytes, and most pixels its header may declare (more is a decompression bomb).
        "NEWSLETTERS_IMAGE_MAX_BYTES": Setting(20 * 1024 * 1024, int, 1),
        "NEWSLETTERS_IMAGE_MAX_PIXELS": Setting(40_000_000, int, 1),
        # Proxies whose X-Forwarded-For the rate limits believe (newsletters.proxies): addresses
        # or networks, comma-separated, e.g. 127.0.0.1,::1 for nginx on the same machine.
        "NEWSLETTERS_TRUSTED_PROXIES": Setting("", str),
        # Wall-clock budget of one Markdown render, in milliseconds: past it the render stops
        # with an error the editor sees (newsletters.markup).
        "NEWSLETTERS_MARKDOWN_BUDGET_MS": Setting(2000, int, 1),
        # Test sends of an issue's email: addresses at once, and messages per editor per hour.
        "NEWSLETTERS_TEST_SEND_MAX_RECIPIENTS": Setting(10, int, 1),
        "NEWSLETTERS_TEST_SENDS_PER_HOUR": Setting(30, int, 1),
        # The signup firewall (newsletters.firewall, docs/operating/signup-protection.md).
        # Subscribe requests per /24 (IPv4) or /48 (IPv6) network, and confirmation mails per
        # recipient domain, per NEWSLETTERS_RATE_PERIOD.
        "NEWSLETTERS_RATE_PER_NETWORK": Setting(60, int, 1),
        "NEWSLETTERS_RATE_PER_DOMAIN": Setting(100, int, 1),
        # The proof-of-work challenge: "auto" (on for NEWSLETTERS_CHALLENGE_HOLD seconds once more
        # than NEWSLETTERS_CHALLENGE_BURST requests came in NEWSLETTERS_CHALLENGE_WINDOW seconds),
        # "always" or "never".
        "NEWSLETTERS_CHALLENGE": Setting("auto", str),
        "NEWSLETTERS_CHALLENGE_BURST": Setting(10, int, 1),
        "NEWSLETTERS_CHALLENGE_WINDOW": Setting(60, int, 1),
        "NEWSLETTERS_CHALLENGE_HOLD": Setting(900, int, 1),
        # Work per challenge: the largest secret number (a browser tries about half of them).
        "NEWSLETTERS_CHALLENGE_MAX_NUMBER": Setting(100_000, int, 1),
        # Refuse addresses whose domain has neither MX nor A/AAAA records ("on" or "off"), asking
        # the DNS server at NEWSLETTERS_DNS_RESOLVER (host or host:port; empty: the system's).
        "NEWSLETTERS_MAIL_DOMAIN_CHECK": Setting("on", str),
        "NEWSLETTERS_DNS_RESOLVER": Setting("", str),
    },
)


def site_url(path: str = "") -> str:
    """Return the absolute URL of a site path (SITE_URL has no trailing slash)."""
    return settings.SITE_URL + path


def site_domain() -> str:
    """Return the site's host name, for Message-IDs and List-Ids."""
    return urlsplit(settings.SITE_URL).hostname or "localhost"
