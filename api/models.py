"""API tokens, the answers kept for Idempotency-Keys, and consent recorded through the API."""

from django.conf import settings
from django.db import models

from newsletters.models import Subscriber
from newsletters.validators import validate_single_line


class Scope(models.TextChoices):
    READ = "read", "read: every GET"
    SUBSCRIBERS = "subscribers", "subscribers: create, change and delete subscribers and subscriptions"
    ISSUES = "issues", "issues: create, change, schedule and publish issues"


class ApiToken(models.Model):
    """A caller of the API. Only the SHA-256 of its secret is stored; the secret is shown once, when made."""

    name = models.CharField(max_length=100, unique=True, validators=[validate_single_line])
    # The token's first characters, not secret: how a call finds its row, and how people tell tokens apart.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="What the token may do: read, subscribers, issues.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return self.name


class IdempotentAnswer(models.Model):
    """The answer to a POST sent with an Idempotency-Key, replayed when the same key comes again.

    A row without a status is a call still running: a second call with its key waits for nothing
    and gets 409.
    """

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotent_answer_unique_key")]
        # Old answers are deleted by age when a token sends a new key.
        indexes = [models.Index(fields=["token", "created_at"], name="idempotent_answer_age_idx")]

    def __str__(self) -> str:
        return f"{self.token_id}: {self.key}"


class Consent(models.Model):
    """A reader's consent that a caller recorded elsewhere (a form in their app), kept as evidence."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="consents")
    newsletters = models.JSONField(default=list, help_text="Slugs of the newsletters consented to.")
    text = models.TextField(help_text="What the reader agreed to, as they saw it.")
    given_at = models.DateTimeField()
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    recorded_by = models.CharField(max_length=100, help_text="The name of the API token that recorded it.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.given_at:%Y-%m-%d}"
