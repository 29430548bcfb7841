"""The files of a newsletter: an issue's attachments and the media library's images.

Models of the newsletters app (newsletters.models imports them, so Django registers them there).
"""

import uuid
from pathlib import PurePath

from django.db import models

from newsletters.validators import check_not_empty, check_single_line, validate_attachment_size, validate_single_line


def attachment_upload_to(instance: "Attachment", filename: str) -> str:
    """Store each file in a directory of its own, so it keeps its name (mail uses the name)."""
    return f"attachments/{uuid.uuid4().hex}/{filename}"


class Attachment(models.Model):
    issue = models.ForeignKey("newsletters.Issue", on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_upload_to, max_length=255, validators=[validate_attachment_size])
    display_name = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text="File name readers see. Empty: the file's name.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [check_single_line("display_name", "attachment_name_single_line")]

    def __str__(self) -> str:
        return self.filename

    @property
    def filename(self) -> str:
        return self.display_name or PurePath(self.file.name).name


class Image(models.Model):
    """An image of a newsletter's media library: resized for email, served by the site (newsletters.images)."""

    newsletter = models.ForeignKey("newsletters.Newsletter", on_delete=models.CASCADE, related_name="images")
    # images/<newsletter slug>/<content hash>.<ext>: a name that changes with the bytes, so it is cached for ever.
    file = models.FileField(max_length=255, unique=True)
    alt = models.CharField(
        max_length=300,
        validators=[validate_single_line],
        help_text="What the image shows, for readers whose mail client blocks images and for screen readers.",
    )
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Bytes as stored.")
    content_type = models.CharField(max_length=40)
    original_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [check_not_empty("alt", "image_alt_not_empty"), check_single_line("alt", "image_alt_single_line")]

    def __str__(self) -> str:
        return self.alt
