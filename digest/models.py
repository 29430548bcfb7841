"""The Delivery ledger: one row per (subscription, window end), the record of every outcome."""

import datetime
from dataclasses import dataclass

from django.db import models
from django.db.models import Q

from newsletters.models import Newsletter, Subscription


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
                condition=Q(status__in=["pending", "sending", "deferred"]),
                name="delivery_one_open_per_subscription",
            ),
            models.CheckConstraint(condition=Q(window_start__lt=models.F("window_end")), name="delivery_window_order"),
        ]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=["pending", "sending", "deferred"]),
                name="delivery_claimable_idx",
            ),
            models.Index(fields=["newsletter", "status"], name="delivery_newsletter_status_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.subscription_id} {self.window_start:%Y-%m-%d %H:%M}→{self.window_end:%Y-%m-%d %H:%M} {self.status}"
        )

    @property
    def window(self) -> "Window":
        """The group this delivery belongs to."""
        return Window(self.newsletter_id, self.window_start, self.window_end)


class Rendering(models.Model):
    """One group's rendered digest, shared by every run and process that sends that group.

    The first run to need a group renders it while holding this row's lock; the others
    wait for it and reuse the result, so premailer runs once per group however many
    processes send, and every reader of a group gets the same text. A rendering is reused
    only while its signature (issues, files, newsletter) matches and it is younger than
    DIGEST_CLAIM_TIMEOUT; runs delete those older than a day.
    """

    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="renderings")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
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
                fields=["newsletter", "window_start", "window_end"], name="rendering_unique_window"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.newsletter_id} {self.window_start:%Y-%m-%d %H:%M}→{self.window_end:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Window:
    """A group key: digests with the same newsletter and window have the same content."""

    newsletter_id: int
    start: datetime.datetime
    end: datetime.datetime
