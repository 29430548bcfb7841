"""System checks: every NEWSLETTERS_* setting is valid; outside DEBUG, each newsletter can be sent."""

from email.headerregistry import Address
from email.utils import parseaddr

from django.conf import settings
from django.core import checks
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from newsletters.conf import newsletters_settings
from newsletters.emails import THEMES_DIR, email_themes
from newsletters.models import Newsletter
from newsletters.proxies import UNTRUSTED_PROXY_KEY, trusted_proxies


@checks.register("newsletters")
def check_settings(app_configs, **kwargs):
    """Every NEWSLETTERS_* setting is valid (from settings or the environment)."""
    try:
        newsletters_settings.check_all()
        trusted_proxies()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="newsletters.E001")]
    return []


@checks.register("newsletters", deploy=True)
def check_rate_limits(app_configs, **kwargs):
    """Outside DEBUG, the rate limits are shared by every web process and see each client, not the proxy."""
    if settings.DEBUG:
        return []
    warnings = []
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        warnings.append(
            checks.Warning(
                "CACHE_URL is locmem:// (or unset): each web process keeps its own rate-limit counters, "
                "so the subscribe limits are multiplied by the number of workers.",
                hint="Set CACHE_URL=redis://127.0.0.1:6379/0 (a cache every web process shares).",
                id="newsletters.W003",
            )
        )
    try:
        proxy = caches["default"].get(UNTRUSTED_PROXY_KEY)
    except Exception:  # noqa: BLE001 (any cache backend's error: the check must still run)
        proxy = None
    if proxy:
        warnings.append(
            checks.Warning(
                f"Requests with X-Forwarded-For arrived from {proxy}, which is not in NEWSLETTERS_TRUSTED_PROXIES: "
                "the rate limits count every visitor behind it as one client.",
                hint=f"If {proxy} is your reverse proxy, add it: NEWSLETTERS_TRUSTED_PROXIES={proxy}.",
                id="newsletters.W004",
            )
        )
    return warnings


@checks.register("newsletters")
def check_senders(app_configs, **kwargs):
    """Outside DEBUG, every active newsletter has a postal address and a sender that is not @localhost.

    CAN-SPAM requires the sender's postal address in commercial email, and mail providers
    reject or bin mail from a domain that does not exist.
    """
    if settings.DEBUG:
        return []
    try:
        newsletters = list(Newsletter.objects.filter(active=True).order_by("slug"))
    except DatabaseError:
        return []  # not migrated yet: `migrate` runs the checks before it creates the tables
    warnings = []
    for newsletter in newsletters:
        if not newsletter.postal_address.strip():
            warnings.append(
                checks.Warning(
                    f"The newsletter {newsletter.slug!r} has no postal address; its digests' footer shows none.",
                    hint="CAN-SPAM requires the sender's physical postal address in commercial email: "
                    "set it in the admin (Newsletters → Postal address).",
                    obj=newsletter,
                    id="newsletters.W001",
                )
            )
        sender = newsletter.sender
        if _domain(sender) == "localhost":
            where = "its From" if newsletter.from_email else "DEFAULT_FROM_EMAIL"
            warnings.append(
                checks.Warning(
                    f"The newsletter {newsletter.slug!r} sends from {sender!r} ({where}): "
                    "mail providers refuse or bin mail from @localhost.",
                    hint="Set a sender at a domain you own (with SPF and DKIM for it).",
                    obj=newsletter,
                    id="newsletters.W002",
                )
            )
    return warnings


@checks.register("newsletters")
def check_templates(app_configs, **kwargs):
    """Every newsletter's chosen template is on disk (else its mails fall back to the default look)."""
    try:
        chosen = list(Newsletter.objects.exclude(template="").order_by("slug").values_list("slug", "template"))
    except DatabaseError:
        return []
    themes = email_themes()
    return [
        checks.Warning(
            f"The newsletter {slug!r} chooses the template {template!r}, which is not in {THEMES_DIR}/ on any "
            "template path: its mails use the default template.",
            hint=f"Restore {THEMES_DIR}/{template}/base.html, or choose one of: "
            + ", ".join(name or "default" for name in themes),
            id="newsletters.W005",
        )
        for slug, template in chosen
        if template not in themes
    ]


def _domain(mailbox: str) -> str:
    address = parseaddr(mailbox)[1]
    try:
        return Address(addr_spec=address).domain.lower()
    except (ValueError, IndexError):
        return address.rpartition("@")[2].lower()
