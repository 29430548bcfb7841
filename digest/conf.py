"""Every DIGEST_* setting with its default, read and checked in one place (project.app_settings).

Each may be set in Django's settings or as an environment variable of the same name.
"""

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import mailers
from django.core.validators import validate_email

from newsletters.validators import validate_mailbox
from project.app_settings import AppSettings, Setting

_FEEDBACK_SENDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")

_SETTINGS = {
    # MAILERS alias digests are sent through.
    "DIGEST_MAILER": Setting("digest", str),
    # Several relays, used round-robin: MAILERS aliases, comma-separated ("": DIGEST_MAILER alone).
    "DIGEST_MAILERS": Setting("", str),
    # SMTP connections each sending process keeps open at once, across its relays.
    "DIGEST_CONNECTIONS": Setting(128, int, 1),
    # At most this many messages a second per sending process (0: no limit), e.g. an ESP's quota.
    "DIGEST_RATE_LIMIT": Setting(0, int, 0),
    # Pacing per mailbox provider (digest.sending.pacing): 1 on, 0 off (a relay that paces itself).
    "DIGEST_PACING": Setting(1, int, 0),
    # Messages in flight to one provider at first; doubled with each round it accepts.
    "DIGEST_PROVIDER_START": Setting(8, int, 1),
    # Throttling replies from one provider in a send task before the rest of its readers wait for a later run.
    "DIGEST_PROVIDER_BACKOFF": Setting(3, int, 1),
    # Messages a second per provider, e.g. "google=20,microsoft=10" (provider names: digest.providers;
    # any other domain is its own provider, e.g. "example.org=5"). "": no per-provider rate.
    "DIGEST_PROVIDER_RATES": Setting("", str),
    # Deliveries claimed at once and sent over the pool; outcomes are recorded per batch.
    "DIGEST_BATCH_SIZE": Setting(2000, int, 1),
    # Send tasks a run enqueues at most (one per batch waiting), when workers run them
    # (TASKS_URL database:// or rq://): at least the number of workers, so all of them send.
    "DIGEST_SEND_TASKS": Setting(8, int, 1),
    # Due subscriptions planned per transaction (PostgreSQL: one statement covers 5× as many ids).
    "DIGEST_PLAN_CHUNK": Setting(1000, int, 1),
    # The lease of a sender's claims, in seconds of the database's clock (digest.sending.lease): renewed
    # every quarter of it while a batch is sent; a sender that stops renewing (killed, frozen)
    # has its claims taken over by the next sender that claims once this has passed.
    "DIGEST_CLAIM_TIMEOUT": Setting(60, int, 1),
    # Windows close only this many seconds after their end, so an issue being saved
    # with a publish time just before the end is always seen.
    "DIGEST_SETTLE_SECONDS": Setting(60, int, 0),
    # Transient failures (4xx, dropped connection) are retried this many times in all.
    "DIGEST_MAX_ATTEMPTS": Setting(8, int, 1),
    # Re-confirmation (digest.planning.letters): a reader who used no signed link for this many
    # months is asked "still want this?" (0: never ask); no answer in DAYS pauses the subscription.
    "DIGEST_RECONFIRM_MONTHS": Setting(0, int, 0),
    "DIGEST_RECONFIRM_DAYS": Setting(14, int, 1),
    # Onboarding steps that fell due longer ago than this (cron stopped for weeks) are not sent late.
    "DIGEST_ONBOARDING_LATE_DAYS": Setting(7, int, 1),
    # First retry after this many seconds, doubling each time, at most DIGEST_RETRY_MAX.
    "DIGEST_RETRY_BACKOFF": Setting(60, int, 1),
    "DIGEST_RETRY_MAX": Setting(6 * 3600, int, 1),
    # Above this total size a digest links its files instead of attaching them.
    "DIGEST_ATTACHMENT_MAX_BYTES": Setting(5 * 1024 * 1024, int, 0),
    # Consecutive permanent failures (5xx) after which a subscriber is suppressed.
    "DIGEST_SUPPRESS_AFTER": Setting(3, int, 1),
    # Optional mailbox for mailto: unsubscribes in List-Unsubscribe, e.g. unsubscribe@example.com.
    "DIGEST_UNSUBSCRIBE_MAILTO": Setting("", str),
    # The sender id ending every digest's Feedback-ID header (Gmail's complaint reports for
    # bulk senders group by it), e.g. examplenews; "": the SITE_URL's host.
    "DIGEST_FEEDBACK_ID_SENDER": Setting("", str),
    # Cron schedule of the digest job (django-crontab and run_scheduler).
    "DIGEST_CRON_SCHEDULE": Setting("*/5 * * * *", str),
    # DKIM signing of digests (off while DIGEST_DKIM_DOMAIN is empty): the d= domain, the
    # selector (the DNS name is SELECTOR._domainkey.DOMAIN) and the PEM file of the RSA
    # private key. `manage.py dkim_keygen` makes a key and prints the DNS record.
    "DIGEST_DKIM_DOMAIN": Setting("", str),
    "DIGEST_DKIM_SELECTOR": Setting("", str),
    "DIGEST_DKIM_KEY_FILE": Setting("", str),
    # Bounces and complaints (digest.returns.policy). The envelope sender of every digest becomes
    # bounces+TOKEN@domain (VERP) when set, e.g. bounces@news.example.org; "": DEFAULT_FROM_EMAIL.
    "DIGEST_BOUNCE_ADDRESS": Setting("", str),
    # Soft bounces (4.x.x) on this many different days within DIGEST_BOUNCE_DECAY_DAYS suppress.
    "DIGEST_BOUNCE_SOFT_THRESHOLD": Setting(5, int, 1),
    # A soft bounce stops counting after this many days (Mailman's bounce_info_stale_after).
    "DIGEST_BOUNCE_DECAY_DAYS": Setting(7, int, 1),
    # The returned message is kept with its event this many days, then only the event.
    "DIGEST_BOUNCE_KEEP_RAW_DAYS": Setting(30, int, 0),
    # A returned message or ESP event is stored with its event cut to this many bytes, and
    # no more are stored once the events of the last 24 hours hold DIGEST_BOUNCE_RAW_DAY_BYTES
    # (counted at DIGEST_BOUNCE_RAW_MAX_BYTES each): a flood of reports cannot fill the database.
    "DIGEST_BOUNCE_RAW_MAX_BYTES": Setting(64 * 1024, int, 0),
    "DIGEST_BOUNCE_RAW_DAY_BYTES": Setting(256 * 1024 * 1024, int, 0),
    # Returned messages larger than this are logged and skipped, never parsed.
    "DIGEST_BOUNCE_MAX_BYTES": Setting(10 * 1024 * 1024, int, 1024),
    # ADMINS are warned when hard bounces or complaints among the digests sent in the last
    # DIGEST_BOUNCE_RATE_DAYS pass these shares (Amazon SES reviews an account at 5% and 0.1%).
    "DIGEST_BOUNCE_RATE_WARN": Setting(0.05, float, 0),
    "DIGEST_COMPLAINT_RATE_WARN": Setting(0.001, float, 0),
    "DIGEST_BOUNCE_RATE_DAYS": Setting(7, int, 1),
    # The circuit breaker (digest.breaker): a newsletter's sending pauses, until an owner resumes
    # it, when among its digests sent in the last DIGEST_BREAKER_HOURS (at least
    # DIGEST_BREAKER_MIN_SENT of them) hard bounces (5xx from the relay, or a hard DSN or ESP
    # event), temporary failures reported after acceptance (a soft DSN or ESP event) or
    # complaints pass these shares (0 turns one off). Amazon SES reviews an account at 5% hard
    # bounces and 0.1% complaints; Buttondown pauses a sender at 5% temporary failures.
    "DIGEST_BREAKER_HARD_RATE": Setting(0.05, float, 0),
    "DIGEST_BREAKER_SOFT_RATE": Setting(0.05, float, 0),
    "DIGEST_BREAKER_COMPLAINT_RATE": Setting(0.001, float, 0),
    "DIGEST_BREAKER_MIN_SENT": Setting(200, int, 1),
    "DIGEST_BREAKER_HOURS": Setting(24, int, 1),
    # Cron schedule of process_bounces, installed when BOUNCE_MAILBOX_URL is set.
    "DIGEST_BOUNCE_CRON_SCHEDULE": Setting("*/10 * * * *", str),
    # How long a sender's first accepted message waits for the other connections' before
    # their marks are committed together (digest.sending.journal): fewer statements, a little latency.
    "DIGEST_JOURNAL_WAIT_MS": Setting(10, int, 0),
    # The resolver `manage.py deliverability_check` asks (digest.deliverability): IP addresses with
    # optional ports, comma-separated, e.g. "127.0.0.1:5353" ("": the system's, /etc/resolv.conf).
    "DIGEST_DNS_RESOLVER": Setting("", str),
    # Seconds one DNS question may take; after one timeout the check asks nothing more.
    "DIGEST_DNS_TIMEOUT": Setting(5.0, float, 0.1),
    # 1: the system checks run the deliverability check's DNS checks at start-up and warn about
    # what is wrong (0: only the command and the admin page run it; start-up needs no DNS).
    "DIGEST_DELIVERABILITY_CHECK": Setting(0, int, 0),
}


# A batch may take at most this many claim leases to send at the rate limit: its claims are
# renewed meanwhile, but they hold rows other senders could send, and a batch that long
# means settings that disagree.
LEASES_PER_BATCH = 10


class DigestSettings(AppSettings):
    """Attribute access to DIGEST_* settings without the prefix: digest_settings.BATCH_SIZE."""

    def check_all(self) -> None:
        """Read every setting once, and the mail settings digests depend on.

        The DKIM key and the bounce address are checked where they are used, and all
        together by digest.checks.settings_check_all.
        """
        super().check_all()
        try:
            validate_mailbox(settings.DEFAULT_FROM_EMAIL)
        except ValidationError as error:
            raise ImproperlyConfigured(f"DEFAULT_FROM_EMAIL: {' '.join(error.messages)}") from None
        if self.UNSUBSCRIBE_MAILTO:
            try:
                validate_email(self.UNSUBSCRIBE_MAILTO)
                if set(self.UNSUBSCRIBE_MAILTO) & set("?#%&"):  # these would change the mailto: URI
                    raise ValidationError("a character a mailto: URI reserves")
            except ValidationError:
                raise ImproperlyConfigured(
                    f"DIGEST_UNSUBSCRIBE_MAILTO: {self.UNSUBSCRIBE_MAILTO!r} is not one address (e.g. unsubscribe@example.com)."
                ) from None
        if self.FEEDBACK_ID_SENDER and not _FEEDBACK_SENDER.match(self.FEEDBACK_ID_SENDER):
            raise ImproperlyConfigured(
                f"DIGEST_FEEDBACK_ID_SENDER: {self.FEEDBACK_ID_SENDER!r} must be letters, digits, dots or dashes, without colons."
            )
        if self.RATE_LIMIT and self.BATCH_SIZE / self.RATE_LIMIT > LEASES_PER_BATCH * self.CLAIM_TIMEOUT:
            most = int(LEASES_PER_BATCH * self.CLAIM_TIMEOUT * self.RATE_LIMIT)
            raise ImproperlyConfigured(
                f"DIGEST_BATCH_SIZE={self.BATCH_SIZE} takes {self.BATCH_SIZE / self.RATE_LIMIT:.0f} s at "
                f"DIGEST_RATE_LIMIT={self.RATE_LIMIT}, more than {LEASES_PER_BATCH} leases of "
                f"DIGEST_CLAIM_TIMEOUT={self.CLAIM_TIMEOUT} s: set DIGEST_BATCH_SIZE to at most {most}."
            )
        self.provider_rates  # noqa: B018  (parses DIGEST_PROVIDER_RATES, naming a wrong entry)
        for alias in self.mailer_aliases:
            if alias not in mailers:
                name = "DIGEST_MAILERS" if self.MAILERS else "DIGEST_MAILER"
                raise ImproperlyConfigured(f"{name}: {alias!r} is not an alias in MAILERS ({', '.join(mailers)}).")

    @property
    def provider_rates(self) -> dict[str, float]:
        """DIGEST_PROVIDER_RATES, "google=20,microsoft=10", as messages a second per provider."""
        rates = {}
        for part in filter(None, (item.strip() for item in self.PROVIDER_RATES.split(","))):
            name, _, rate = part.partition("=")
            try:
                rates[name.strip().lower()] = float(rate)
                if not name.strip() or rates[name.strip().lower()] <= 0:
                    raise ValueError
            except ValueError:
                raise ImproperlyConfigured(
                    f"DIGEST_PROVIDER_RATES: {part!r} is not provider=messages-a-second (e.g. google=20,microsoft=10)."
                ) from None
        return rates

    @property
    def mailer_aliases(self) -> list[str]:
        """The MAILERS aliases digests go through: DIGEST_MAILERS, else DIGEST_MAILER."""
        return [alias.strip() for alias in self.MAILERS.split(",") if alias.strip()] or [self.MAILER]


digest_settings = DigestSettings("DIGEST_", _SETTINGS)
