"""Every DIGEST_* setting with its default, read and checked in one place.

A wrong value raises ImproperlyConfigured naming the setting. Settings are read on
each access so tests (and `override_settings`) see changes.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class _Setting:
    default: Any
    kind: type
    minimum: float | None = None


_SETTINGS = {
    # MAILERS alias digests are sent through.
    "DIGEST_MAILER": _Setting("digest", str),
    # Deliveries claimed and sent over one SMTP connection; outcomes are recorded per batch.
    "DIGEST_BATCH_SIZE": _Setting(200, int, 1),
    # Due subscriptions planned per transaction.
    "DIGEST_PLAN_CHUNK": _Setting(1000, int, 1),
    # Seconds after which a claim whose process died may be taken over by another run.
    "DIGEST_CLAIM_TIMEOUT": _Setting(600, int, 1),
    # Windows close only this many seconds after their end, so an issue being saved
    # with a publish time just before the end is always seen.
    "DIGEST_SETTLE_SECONDS": _Setting(60, int, 0),
    # Transient failures (4xx, dropped connection) are retried this many times in all.
    "DIGEST_MAX_ATTEMPTS": _Setting(8, int, 1),
    # First retry after this many seconds, doubling each time, at most DIGEST_RETRY_MAX.
    "DIGEST_RETRY_BACKOFF": _Setting(60, int, 1),
    "DIGEST_RETRY_MAX": _Setting(6 * 3600, int, 1),
    # Above this total size a digest links its files instead of attaching them.
    "DIGEST_ATTACHMENT_MAX_BYTES": _Setting(5 * 1024 * 1024, int, 0),
    # Consecutive permanent failures (5xx) after which a subscriber is suppressed.
    "DIGEST_SUPPRESS_AFTER": _Setting(3, int, 1),
    # Optional mailbox for mailto: unsubscribes in List-Unsubscribe, e.g. unsubscribe@example.com.
    "DIGEST_UNSUBSCRIBE_MAILTO": _Setting("", str),
    # Cron schedule of the digest job (django-crontab and run_scheduler).
    "DIGEST_CRON_SCHEDULE": _Setting("*/5 * * * *", str),
    # Where runs journal the messages the server accepted ("": VAR_DIR/journal). Share it
    # between machines to let any of them recover a dead sender's batch without resending.
    "DIGEST_JOURNAL_DIR": _Setting("", str),
}


class DigestSettings:
    """Attribute access to DIGEST_* settings without the prefix: digest_settings.BATCH_SIZE."""

    def __getattr__(self, name: str) -> Any:
        key = f"DIGEST_{name}"
        if key not in _SETTINGS:
            raise AttributeError(name)
        spec = _SETTINGS[key]
        value = getattr(settings, key, spec.default)
        if spec.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ImproperlyConfigured(f"{key} must be an integer, not {value!r}.")
        if spec.kind is str and not isinstance(value, str):
            raise ImproperlyConfigured(f"{key} must be a string, not {value!r}.")
        if spec.minimum is not None and value < spec.minimum:
            raise ImproperlyConfigured(f"{key} must be at least {spec.minimum}, not {value!r}.")
        return value

    @property
    def journal_dir(self) -> Path:
        """Return DIGEST_JOURNAL_DIR, defaulting to VAR_DIR/journal."""
        return Path(self.JOURNAL_DIR or Path(settings.VAR_DIR) / "journal")

    def check_all(self) -> None:
        """Read every setting once, so a wrong one fails at start-up rather than mid-run."""
        from django.core.mail import mailers

        for key in _SETTINGS:
            getattr(self, key.removeprefix("DIGEST_"))
        from django.core.exceptions import ValidationError

        from newsletters.validators import validate_mailbox

        try:
            validate_mailbox(settings.DEFAULT_FROM_EMAIL)
        except ValidationError as error:
            raise ImproperlyConfigured(f"DEFAULT_FROM_EMAIL: {' '.join(error.messages)}") from None
        if self.MAILER not in mailers:
            raise ImproperlyConfigured(
                f"DIGEST_MAILER={self.MAILER!r} is not an alias in MAILERS ({', '.join(mailers)})."
            )


digest_settings = DigestSettings()
