"""System checks: every NEWSLETTERS_* setting is valid; outside DEBUG, each newsletter can be sent."""

from email.headerregistry import Address
from email.utils import parseaddr

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from newsletters.conf import newsletters_settings


@checks.register("newsletters")
def check_settings(app_configs, **kwargs):
    """Every NEWSLETTERS_* setting is valid (from settings or the environment)."""
    try:
        newsletters_settings.check_all()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="newsletters.E001")]
    return []


@checks.register("newsletters")
def check_senders(app_configs, **kwargs):
    """Outside DEBUG, every active newsletter has a postal address and a sender that is not @localhost.

    CAN-SPAM requires the sender's postal address in commercial email, and mail providers
    reject or bin mail from a domain that does not exist.
    """
    if settings.DEBUG:
        return []
    from newsletters.models import Newsletter

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
        sender = newsletter.from_email or settings.DEFAULT_FROM_EMAIL
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


def _domain(mailbox: str) -> str:
    address = parseaddr(mailbox)[1]
    try:
        return Address(addr_spec=address).domain.lower()
    except (ValueError, IndexError):
        return address.rpartition("@")[2].lower()
