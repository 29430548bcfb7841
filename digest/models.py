"""The Delivery ledger: one row per (subscription, window end), the record of every outcome."""

import datetime
import secrets
from dataclasses import dataclass

from django.db import models
from django.db.models import Q

from newsletters.languages import mail_language
from newsletters.models import Issue, Newsletter, Subscriber, Subscription


def carrying(*, newsletter, publish_at, prefix: str = "") -> Q:
    """Deliveries whose window holds an issue's publish time: the digests that carried it.

    A window is (start, end], so the issue is in it when start < publish_at <= end. The
    arguments may be values or expressions (OuterRef); `prefix` reaches Delivery through
    a relation ("delivery__" from BounceEvent).
    """
    return Q(
        **{
            f"{prefix}newsletter": newsletter,
            f"{prefix}window_start__lt": publish_at,
            f"{prefix}window_end__gte": publish_at,
        }
    )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred (will retry)"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)


class Delivery(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="deliveries")
    window_start = models.DateTimeField(help_text="Issues published after this time…")
    window_end = models.DateTimeField(help_text="…up to and including this time are in the digest.")
    status = models.CharField(max_length=10, choices=DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True, help_text="Stable across retries of this delivery.")
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "window_end"], name="delivery_unique_window"),
            # At most one digest per subscription is in flight: a second run can never plan
            # an overlapping window while the first one's outcome is unknown.
            models.UniqueConstraint(
                fields=["subscription"],
                condition=Q(status__in=OPEN_STATUSES),
                name="delivery_one_open_per_subscription",
            ),
            models.CheckConstraint(condition=Q(window_start__lt=models.F("window_end")), name="delivery_window_order"),
        ]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=OPEN_STATUSES),
                name="delivery_claimable_idx",
            ),
            models.Index(fields=["newsletter", "status"], name="delivery_newsletter_status_idx"),
            # The circuit breaker (digest.breaker) counts a newsletter's digests attempted in its
            # last hours (by their claim's stamp) after every batch: a range of this index, not
            # every digest it ever sent.
            models.Index(fields=["newsletter", "claimed_at"], name="delivery_breaker_idx"),
            # Complaints and bounces without a VERP token are matched by the original Message-ID.
            models.Index(fields=["message_id"], name="delivery_message_id_idx"),
            # The dashboard's digests per day and the issue report read only this index
            # (an index-only scan).
            models.Index(fields=["window_end", "newsletter", "status"], name="delivery_window_end_idx"),
            # An old issue's report: the windows that started before it are few, where those
            # that ended after it are a year of digests (896 ms to 36 ms at 9 million rows).
            models.Index(
                fields=["window_start", "newsletter", "status", "window_end"], name="delivery_window_start_idx"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.subscription_id} {self.window_start:%Y-%m-%d %H:%M}→{self.window_end:%Y-%m-%d %H:%M} {self.status}"
        )

    @property
    def window(self) -> "Window":
        """The group this delivery belongs to: its window, in its reader's language.

        Reads the subscription's subscriber and newsletter: claimed batches select them with it.
        """
        subscription = self.subscription
        language = mail_language(reader=subscription.subscriber.language, newsletter=subscription.newsletter.language)
        return Window(self.newsletter_id, self.window_start, self.window_end, language)


class Rendering(models.Model):
    """One group's rendered digest, shared by every run and process that sends that group.

    The first run to need a group renders it while holding this row's lock; the others
    wait for it and reuse the result, so premailer runs once per group however many
    processes send, and every reader of a group gets the same text. A rendering is reused
    only while its signature (issues, files, newsletter) matches and it is younger than
    digest.rendering.content.REUSE_SECONDS; runs delete those older than a day.
    """

    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="renderings")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    language = models.CharField(max_length=35, default="", help_text="The language of its words around the issues.")
    signature = models.CharField(max_length=64, blank=True)
    rendered_at = models.DateTimeField()
    subject = models.TextField(blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    issue_ids = models.JSONField(default=list)
    attachments = models.JSONField(default=list, help_text="[path, filename, MIME type] of each attached file.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "window_start", "window_end", "language"], name="rendering_unique_window_language"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.newsletter_id} {self.window_start:%Y-%m-%d %H:%M}→{self.window_end:%Y-%m-%d %H:%M}"


class BounceKind(models.TextChoices):
    HARD = "hard", "Hard bounce"
    SOFT = "soft", "Soft bounce"
    COMPLAINT = "complaint", "Complaint"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed at the ESP"
    LIFTED = "lifted", "Suppression lifted"


class BounceAction(models.TextChoices):
    """What the policy (digest.returns.policy) did about an event."""

    SUPPRESSED = "suppressed", "Suppressed"
    COUNTED = "counted", "Counted (soft score)"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed from everything"
    LIFTED = "lifted", "Suppression lifted"
    NONE = "none", "Nothing (already stopped)"


class BounceEvent(models.Model):
    """Something that came back about mail to a subscriber: a bounce, a complaint, an ESP event.

    Or an editor lifting a suppression. `fingerprint` is unique, so the same report read
    twice (a mailbox scanned again, a webhook retried) is stored and counted once.
    """

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="bounce_events")
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="bounce_events"
    )
    kind = models.CharField(max_length=12, choices=BounceKind)
    action = models.CharField(max_length=12, choices=BounceAction)
    source = models.CharField(max_length=40, help_text="imap, pop3, maildir, mbox, stdin, an ESP's webhook, or admin.")
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=16, blank=True, help_text="Enhanced status code (RFC 3463), e.g. 5.1.1.")
    diagnostic = models.TextField(blank=True, help_text="The remote server's answer, the feedback type, or why.")
    score = models.PositiveIntegerField(default=0, help_text="Soft-bounce score after this event.")
    fingerprint = models.CharField(max_length=64, unique=True)
    raw = models.TextField(blank=True, help_text="The returned message or event, kept DIGEST_BOUNCE_KEEP_RAW_DAYS.")

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["subscriber", "kind", "occurred_at"], name="bounce_subscriber_kind_idx"),
            # The last day's events, counted for each event stored (the raw-bounce day cap,
            # digest.returns.policy), and the last days' rates and old raw bounces after each run.
            models.Index(fields=["occurred_at"], name="bounce_occurred_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.occurred_at:%Y-%m-%d %H:%M}"


class JournalEntry(models.Model):
    """A message a relay accepted, noted by its sender at once (digest.sending.journal) and deleted after its batch is recorded."""

    claimant = models.CharField(max_length=64)
    delivery_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["claimant"], name="journal_claimant_idx")]
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"{self.claimant}: {self.delivery_id}"


class DeliveryDay(models.Model):
    """Digests per day, newsletter and outcome, counted once a day is over and none of its digests is open.

    The dashboard's chart reads these instead of a year of Delivery rows; days still open
    are counted live. Retrying failed deliveries (the admin action) deletes their days' rows,
    and so does a digest planned after its day was counted (through_id).
    """

    day = models.DateField(help_text="The day the digests' windows ended, in the site's time zone.")
    # NULL, with status "" and count 0: the day had no digests at all (so it is not counted again).
    newsletter = models.ForeignKey(Newsletter, null=True, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=DeliveryStatus, blank=True)
    count = models.PositiveIntegerField()
    # The highest Delivery id when the day was counted: a digest planned later for a window that
    # ended that day (a run that came late) has a higher id, and the day is counted again.
    through_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "newsletter", "status"], name="delivery_day_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.newsletter_id} {self.status}: {self.count}"


class AdminAlert(models.Model):
    """What ADMINS were last mailed about, one row per alert, in the database every sender machine shares.

    `kinds` are the conditions the last mail named (comma-separated, e.g. "bounce,complaint");
    conditions that have cleared since are removed, so one that comes back is new again.
    """

    key = models.CharField(max_length=50, unique=True)
    kinds = models.CharField(max_length=200, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.kinds or 'clear'}"


class Installation(models.Model):
    """This database's own identity: one row, made by a migration, never changed.

    Its id goes into every Message-ID, so two installations sharing a SECRET_KEY (a copy
    of production as staging, two sites from one settings file) never mint the same one.
    """

    key = models.CharField(max_length=32, unique=True, help_text="Random, made once when the database was created.")

    def __str__(self) -> str:
        return f"installation {self.key}"


def installation_key() -> str:
    """Return this database's installation id: read once per planning run, for every Message-ID it mints.

    The migration that made the table made the row; it is made here only if the row is gone
    (a flushed test database), and then it is new, as a new installation's would be.
    """
    key = Installation.objects.order_by("pk").values_list("key", flat=True).first()
    if key is None:
        key = Installation.objects.get_or_create(pk=1, defaults={"key": secrets.token_hex(6)})[0].key
    return key


class LetterKind(models.TextChoices):
    ONBOARDING = "onboarding", "Onboarding step"
    RECONFIRM = "reconfirm", "Still want this?"
    INVITATION = "invitation", "Invitation to confirm"


class Letter(models.Model):
    """A one-off mail to one subscription (an onboarding step, a re-confirmation, an invitation), sent once.

    The ledger of everything that is not a digest: planned once per (subscription, kind,
    step), claimed, sent and recorded by digest.sending.letters with the digests' lease,
    journal and pool, so a crash resends at most the letters in flight. `step` is the
    onboarding step's id, the re-confirmation's round, 0 for an invitation.
    """

    kind = models.CharField(max_length=12, choices=LetterKind)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="letters")
    step = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True, help_text="Given at the first claim; kept on retries.")
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(help_text="Not sent before this time; after a deferral, when it is retried.")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "kind", "step"], name="letter_unique_step"),
        ]
        indexes = [
            # What a sender claims: open letters that are due.
            models.Index(
                fields=["status", "due_at"],
                condition=Q(status__in=["pending", "sending", "deferred"]),
                name="letter_claimable_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.step} to {self.subscription_id}: {self.status}"


class Run(models.Model):
    """One digest run (not a dry run) and its summary, as the dashboard lists them."""

    started_at = models.DateTimeField(help_text="Wall-clock start of the run.")
    finished_at = models.DateTimeField()
    now = models.DateTimeField(help_text="The moment the run acted for (send_digests --now).")
    newsletter = models.CharField(max_length=100, blank=True, help_text="--newsletter, if the run had one.")
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-started_at"], name="run_started_idx")]

    def __str__(self) -> str:
        return f"run {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class LinkCount(models.Model):
    """How often one link of one issue was followed from a digest: per link, never per reader.

    Counted only for newsletters with count_links on. Scanners (HEAD requests, known scanner
    agents, many links of one issue from one client within seconds) are counted apart.
    """

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="link_counts")
    url = models.TextField()
    url_hash = models.CharField(max_length=64, help_text="SHA-256 of the URL: the unique key with the issue.")
    clicks = models.PositiveIntegerField(default=0)
    scanner_clicks = models.PositiveIntegerField(default=0, help_text="Followed by mail scanners, not people.")
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "url_hash"], name="link_count_unique")]

    def __str__(self) -> str:
        return f"{self.url}: {self.clicks}"


@dataclass(frozen=True)
class Window:
    """A group key: digests with the same newsletter, window and language have the same content.

    The planners leave the language empty (which issues a window holds does not depend on
    it); a claimed delivery's window carries its reader's (newsletters.languages).
    """

    newsletter_id: int
    start: datetime.datetime
    end: datetime.datetime
    language: str = ""
