"""Webhook endpoints, the outbox of events for them, and the log of every attempt. Data and constraints only."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from hooks.addresses import validate_endpoint_url
from newsletters.models import Newsletter


class EventType(models.TextChoices):
    SUBSCRIBER_CONFIRMED = "subscriber.confirmed", "subscriber.confirmed: a reader confirmed a subscription"
    SUBSCRIPTION_CHANGED = "subscription.changed", "subscription.changed: frequency or status changed"
    SUBSCRIPTION_UNSUBSCRIBED = "subscription.unsubscribed", "subscription.unsubscribed: a reader left"
    BOUNCE_HARD = "bounce.hard", "bounce.hard: mail to a reader bounced for good"
    COMPLAINT = "complaint", "complaint: a reader reported a digest as spam"
    ISSUE_PUBLISHED = "issue.published", "issue.published: an issue was published or scheduled"
    RUN_FINISHED = "digest.run.finished", "digest.run.finished: a digest run ended"


def validate_event_types(value) -> None:
    """Refuse anything but a non-empty list of known event types."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.")
    unknown = sorted(str(item) for item in value if item not in EventType.values)
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(unknown)}.")


def webhook_id_new() -> str:
    """A new event's id, the webhook-id header: unique, and the same on every retry and replay."""
    return f"msg_{uuid.uuid4().hex}"


class Endpoint(models.Model):
    """A URL told about a newsletter's events, signed with its secret."""

    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="hook_endpoints")
    url = models.URLField(
        "URL",
        max_length=2000,
        validators=[validate_endpoint_url],
        help_text="Where events are POSTed, e.g. https://crm.example.com/hooks/digest. Redirects are not followed.",
    )
    events = models.JSONField(default=list, validators=[validate_event_types])
    description = models.CharField(max_length=200, blank=True)
    owner_email = models.EmailField(
        blank=True, help_text="Told by mail, with ADMINS, when the endpoint is paused after failing."
    )
    # Made by hooks.signing.secret_generate when the endpoint is created, shown once in the admin.
    secret = models.CharField(max_length=100, editable=False)
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Paused: events are kept, nothing is sent.")
    pause_reason = models.CharField(max_length=300, blank=True)
    # Failed attempts in a row, since when, and when the next may be made (exponential backoff).
    failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    # The worker delivering its events, until when (a lease, renewed every quarter of HOOKS_LEASE_SECONDS).
    claimed_by = models.CharField(max_length=40, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["newsletter", "url"]

    def __str__(self) -> str:
        return self.url


class EventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"


class Event(models.Model):
    """One event for one endpoint: the outbox row, written in the transaction of the change it tells of.

    `body` is the JSON sent, fixed when the event is written, so every retry and replay sends
    the same bytes under the same webhook-id. Events of an endpoint go out in id order.
    """

    webhook_id = models.CharField(max_length=40, unique=True, default=webhook_id_new, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="outbox")
    type = models.CharField(max_length=40, choices=EventType)
    key = models.CharField(max_length=64, blank=True, help_text="What it is about: subscriber:12, issue:3, run:7.")
    body = models.TextField()
    status = models.CharField(max_length=10, choices=EventStatus, default=EventStatus.PENDING)
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # An endpoint's next pending events, in order (hooks.delivery), and which endpoints have any.
            models.Index(fields=["endpoint", "id"], condition=Q(status="pending"), name="hook_event_pending_idx"),
            # issue.published once per issue and endpoint (hooks.outbox).
            models.Index(fields=["endpoint", "type", "key"], name="hook_event_key_idx"),
            # Delivered events past HOOKS_KEEP_DAYS (hooks.delivery.events_prune).
            models.Index(fields=["delivered_at"], name="hook_event_delivered_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"


class Attempt(models.Model):
    """One try at delivering an event, and what the endpoint answered: the delivery log."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="None: no HTTP answer.")
    error = models.CharField(max_length=500, blank=True)
    response = models.TextField(blank=True, help_text="The start of the answer's body.")
    milliseconds = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error} at {self.at:%Y-%m-%d %H:%M:%S}"
