"""A newsletter's onboarding sequence in its admin page: the steps inline, with what each one's letters did."""

from django import forms
from django.contrib import admin
from django.db.models import Count, Q

from digest.models import DeliveryStatus, Letter, LetterKind
from newsletters.admin import markdown_clean
from newsletters.admin_parts import LabelledTabularInline
from newsletters.models import IssueStatus, OnboardingStep


class OnboardingStepForm(forms.ModelForm):
    class Meta:
        model = OnboardingStep
        fields = ["position", "delay_days", "delay_hours", "subject", "body", "issue"]
        widgets = {"body": forms.Textarea(attrs={"rows": 4, "cols": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        newsletter = self.instance.newsletter if self.instance.newsletter_id else None
        issues = self.fields["issue"].queryset.filter(status=IssueStatus.PUBLISHED)
        self.fields["issue"].queryset = issues.filter(newsletter=newsletter) if newsletter else issues

    def clean_body(self):
        return markdown_clean(self.cleaned_data["body"])

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("body", "").strip() and not cleaned.get("issue"):
            raise forms.ValidationError("Write the step's mail in Markdown, or pick an issue to send back.")
        return cleaned


class OnboardingStepInline(LabelledTabularInline):
    model = OnboardingStep
    form = OnboardingStepForm
    extra = 1  # a blank step to fill in, with or without the admin's script
    ordering = ["position", "id"]
    readonly_fields = ["letters"]
    verbose_name = "onboarding step"
    verbose_name_plural = "Onboarding: mails after a reader confirms (step one is the welcome)"

    @admin.display(description="Letters sent / waiting")
    def letters(self, step: OnboardingStep) -> str:
        if step.pk is None:
            return "–"
        counts = Letter.objects.filter(kind=LetterKind.ONBOARDING, step=step.pk).aggregate(
            sent=Count("id", filter=Q(status=DeliveryStatus.SENT)),
            waiting=Count("id", filter=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEFERRED])),
        )
        return f"{counts['sent']} / {counts['waiting']}"
