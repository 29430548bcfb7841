"""Test sends of an issue's email to a list of addresses: checked, counted against a quota, logged.

The mail itself is built and sent by the caller (the digest engine renders it); this keeps
the rules: every address valid or nothing is sent, at most NEWSLETTERS_TEST_SEND_MAX_RECIPIENTS
at once, at most NEWSLETTERS_TEST_SENDS_PER_HOUR messages per editor, one log line per send.
"""

import logging
import re
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from newsletters.conf import newsletters_settings
from newsletters.exceptions import NewslettersError
from newsletters.validators import email_normalize

logger = logging.getLogger(__name__)
_SEPARATORS = re.compile(r"[\s,;]+")
_HOUR = 3600


class SendTestRefused(NewslettersError):
    """A test send that was refused before anything was sent; the message says why."""


def testsend_recipients_parse(text: str, *, default: str) -> list[str]:
    """Return the distinct addresses in `text` (commas, semicolons or spaces between), else `default`."""
    given = [part for part in _SEPARATORS.split(text.strip()) if part] or ([default] if default else [])
    if not given:
        raise SendTestRefused("Enter the addresses to send the test to (your user has no email address).")
    addresses: list[str] = []
    for part in given:
        try:
            validate_email(part)
            address = email_normalize(part)
        except ValidationError:
            raise SendTestRefused(f"{part!r} is not an email address; nothing was sent.") from None
        if address.lower() not in {known.lower() for known in addresses}:
            addresses.append(address)
    limit = newsletters_settings.TEST_SEND_MAX_RECIPIENTS
    if len(addresses) > limit:
        raise SendTestRefused(
            f"{len(addresses)} addresses: a test goes to at most {limit} (NEWSLETTERS_TEST_SEND_MAX_RECIPIENTS)."
        )
    return addresses


def testsend_run(*, user: AbstractBaseUser, to: str, what: str, send: Callable[[str], int]) -> list[str]:
    """Send a test of `what` to each address in `to` (else the user's own) with `send`; return the addresses.

    Refuses, sending nothing, when an address is invalid or the editor's hourly quota would be passed.
    """
    addresses = testsend_recipients_parse(to, default=getattr(user, "email", ""))
    key, limit = f"test-sends:{user.pk}", newsletters_settings.TEST_SENDS_PER_HOUR
    cache.add(key, 0, timeout=_HOUR)
    if cache.get(key, 0) + len(addresses) > limit:
        raise SendTestRefused(
            f"{len(addresses)} more would pass your {limit} test messages an hour "
            "(NEWSLETTERS_TEST_SENDS_PER_HOUR); try again later."
        )
    sent = 0
    for address in addresses:
        sent += send(address)
        try:
            cache.incr(key)
        except ValueError:  # the hour ran out between the check and now
            cache.set(key, 1, timeout=_HOUR)
    logger.info("Test of %s sent by %s to %s (%d message(s))", what, user.get_username(), ", ".join(addresses), sent)
    return addresses
