"""The onboarding sequence's model, OnboardingStep (newsletters.models re-exports it; the mails are newsletters.onboarding).

Apart from newsletters/models.py to keep that module short; it names the other models by
their label, so it imports none of them.
"""

import datetime

from django.core.validators import MaxValueValidator, ProhibitNullCharactersValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from newsletters.validators import validate_single_line


class OnboardingStep(models.Model):
    """One mail of a newsletter's onboarding sequence: Markdown, or an issue sent back, some time after joining.

    digest.planning.letters plans each step as a Letter once its time comes for a reader who
    joined (Subscription.joined_at) no earlier than the step existed, so adding a step never
    mails readers who joined long ago.
    """

    newsletter = models.ForeignKey("newsletters.Newsletter", on_delete=models.CASCADE, related_name="onboarding_steps")
    position = models.PositiveIntegerField(default=0, help_text="Steps go out in this order.")
    delay_days = models.PositiveIntegerField(default=0, help_text="Days after the reader confirms.")
    delay_hours = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(23)], help_text="…and hours.")
    subject = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text="Empty: “Welcome to <newsletter>” for a text, the issue's title for an issue.",
    )
    body = models.TextField(
        blank=True,
        validators=[ProhibitNullCharactersValidator()],
        help_text="Markdown. The latest issue is linked below it.",
    )
    issue = models.ForeignKey(
        "newsletters.Issue",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Or send back this issue (a published one).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["newsletter", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(body="") | Q(issue__isnull=False), name="onboarding_step_body_or_issue"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.newsletter}: step {self.position}"

    @property
    def delay(self) -> datetime.timedelta:
        return datetime.timedelta(days=self.delay_days, hours=self.delay_hours)
