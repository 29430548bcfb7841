"""The record of an admin CSV import, SubscriberImport (newsletters.models re-exports it; newsletters.subscriber_imports runs it).

Apart from newsletters/models.py to keep that module short; it names the other models by
their label, so it imports none of them.
"""

from django.conf import settings
from django.db import models


class ImportMode(models.TextChoices):
    INVITE = "invite", "Send each new address an invitation to confirm"
    CONSENT = "consent", "I have their consent"


class ImportStatus(models.TextChoices):
    PREVIEW = "preview", "Previewed, not started"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SubscriberImport(models.Model):
    """A CSV file imported from the admin: the record of who brought these readers in, when, and on what grounds."""

    newsletter = models.ForeignKey("newsletters.Newsletter", on_delete=models.CASCADE, related_name="imports")
    file_name = models.CharField(max_length=255)
    mode = models.CharField(max_length=10, choices=ImportMode, blank=True, help_text="Chosen after the preview.")
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Kept as text too: the record of consent outlives the staff account.
    imported_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    text = models.TextField(help_text="The file as uploaded; emptied once the import has run.")
    status = models.CharField(max_length=10, choices=ImportStatus, default=ImportStatus.PREVIEW)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="The rows refused, by line (the first ones).")
    failure = models.TextField(blank=True, help_text="Why the whole import failed, if it did.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # Importing needs its own permission (roles.py): editors may not bring readers in.
        default_permissions = ("add", "view")

    def __str__(self) -> str:
        return f"{self.file_name} → {self.newsletter} ({self.get_mode_display()})"
