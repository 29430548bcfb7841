"""The editor's admin: newsletters, issues with attachments and preview, subscribers."""

import datetime

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape, format_html

from newsletters import admin_imports  # noqa: F401 (registers the subscriber imports' admin)
from newsletters.admin_parts import LabelledFileWidget, LabelledTabularInline, list_time
from newsletters.datetimes import EXAMPLE, LocalDateTimeField, zone_named
from newsletters.embed import embed_snippet
from newsletters.exceptions import MarkupError
from newsletters.exports import csv_export_action
from newsletters.image_admin import ImageAdmin  # noqa: F401 (imported to register the media library's admin)
from newsletters.markup import markdown_to_html
from newsletters.models import (
    Attachment,
    Frequency,
    Issue,
    IssueStatus,
    Newsletter,
    SignupRefusal,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from newsletters.selectors import audience_counted
from newsletters.services import issue_publish
from project.clock import db_now

# Where the time zone the editor's browser posted with a publish time is kept, for the pages after.
EDITOR_ZONE_KEY = "newsletters_editor_time_zone"


def markdown_clean(source: str) -> str:
    """Refuse Markdown that cannot be rendered at bounded cost, with the reason, in the form."""
    try:
        markdown_to_html(source)
    except MarkupError as error:
        raise forms.ValidationError(str(error), code="markup") from None
    return source


class NewsletterForm(forms.ModelForm):
    def clean_header_text(self):
        return markdown_clean(self.cleaned_data["header_text"])

    def clean_footer_text(self):
        return markdown_clean(self.cleaned_data["footer_text"])


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    formfield_overrides = {models.ImageField: {"widget": LabelledFileWidget}}
    form = NewsletterForm
    list_display = ["name", "slug", "active", "send_time", "weekly_day", "subscriber_count"]
    list_filter = ["active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    # Set by the digest engine's circuit breaker, cleared by its resume button (which records who).
    readonly_fields = ["paused_at", "pause_reason", "resumed_at", "resumed_by", "embed_snippet"]

    @admin.display(description="Subscribe form for your site")
    def embed_snippet(self, obj):
        if obj is None or obj.pk is None:
            return "Save the newsletter first."
        return format_html(
            "<p>Paste this HTML into a page of a site listed under Embed origins. It works without the "
            "script; with it the answer shows in place. <code>next</code> is where readers return.</p>"
            '<pre style="white-space: pre-wrap; max-width: 60rem;"><code>{}</code></pre>',
            escape(embed_snippet(obj)),  # shown as code: escape() escapes even safe strings
        )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _subscribers=models.Count(
                    "subscriptions", filter=models.Q(subscriptions__status=SubscriptionStatus.ACTIVE)
                )
            )
        )

    @admin.display(description="Active subscriptions", ordering="_subscribers")
    def subscriber_count(self, obj):
        return obj._subscribers


class AttachmentInline(LabelledTabularInline):
    model = Attachment
    extra = 1


class ScheduleForm(forms.Form):
    publish_at = LocalDateTimeField(label="Publish at", help_text=f"Pick a time, or type one such as {EXAMPLE}.")

    def clean_publish_at(self):
        value = self.cleaned_data["publish_at"]
        if value <= db_now():
            raise forms.ValidationError("Choose a time in the future, or use “Publish now”.")
        return value


class IssueForm(forms.ModelForm):
    publish_at = LocalDateTimeField(
        required=False,
        label="Publish at",
        help_text="When readers get it, in your time. In the future: scheduled. Empty when publishing: now.",
    )

    class Meta:
        model = Issue
        fields = ["newsletter", "title", "slug", "body", "preheader", "status", "publish_at"]

    def clean_body(self):
        return markdown_clean(self.cleaned_data["body"])

    def clean_publish_at(self):
        value = self.cleaned_data["publish_at"]
        if value is not None:
            self.cleaned_data["publish_at_zone"] = value.tzinfo.key
        return value

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("status") == IssueStatus.PUBLISHED:
            # The database's clock, which digest windows close on: a web server whose clock is
            # behind the scheduler's must not publish into a window that already closed.
            now = db_now()
            when = cleaned.get("publish_at")
            publishing = "status" in self.changed_data or "publish_at" in self.changed_data or not self.instance.pk
            # A publish time in the past would place the issue in digest windows that may
            # already be closed, and those readers would never get it: publishing means now.
            if when is None or (publishing and when < now):
                cleaned["publish_at"] = now
                self.instance.publish_at = now
        return cleaned


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    form = IssueForm
    list_display = ["title", "newsletter", "state_label", "publish_at", "attachment_count", "preview_link"]
    list_filter = ["newsletter", "status"]
    search_fields = ["title", "body"]
    date_hierarchy = "publish_at"
    prepopulated_fields = {"slug": ["title"]}
    inlines = [AttachmentInline]
    actions = ["publish_now", "schedule"]
    readonly_fields = ["author", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # Once readers may have received an issue, moving its publish time could send it
        # again (later) or never (earlier).
        if obj is not None and obj.status == IssueStatus.PUBLISHED and obj.publish_at <= db_now():
            return [*self.readonly_fields, "publish_at"]
        return self.readonly_fields

    fields = [
        "newsletter",
        "title",
        "slug",
        "body",
        "preheader",
        "status",
        "publish_at",
        "author",
        "created_at",
        "updated_at",
    ]
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 28, "style": "font-family: monospace; width: 95%"})}
    }

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("newsletter")
            .annotate(_attachments=models.Count("attachments"))
        )

    @admin.display(description="State", ordering="status")
    def state_label(self, obj):
        return obj.state

    @admin.display(description="Files", ordering="_attachments")
    def attachment_count(self, obj):
        return obj._attachments

    @admin.display(description="Preview")
    def preview_link(self, obj):
        return format_html('<a href="{}">Preview</a>', reverse("admin:newsletters_issue_preview", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        if not change and obj.author_id is None:
            obj.author = request.user
        if zone := form.cleaned_data.get("publish_at_zone"):
            request.session[EDITOR_ZONE_KEY] = zone  # the confirmation page speaks the editor's time
        if form.cleaned_data.get("status") == IssueStatus.PUBLISHED and form.initial.get("status") != obj.status:
            # Publishing waits for the confirmation page, which names who gets it.
            obj.status = IssueStatus.DRAFT
            request.issue_to_confirm = True
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return self._confirmation(request, obj) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        return self._confirmation(request, obj) or super().response_change(request, obj)

    def _confirmation(self, request, obj):
        if not getattr(request, "issue_to_confirm", False):
            return None
        self.message_user(request, "Saved as a draft: check who gets it, then publish.", messages.INFO)
        return redirect("admin:newsletters_issue_publish", obj.pk)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", wrap(self.preview_view), name="newsletters_issue_preview"),
            path("<int:pk>/publish/", wrap(self.publish_view), name="newsletters_issue_publish"),
            *super().get_urls(),
        ]

    def publish_view(self, request, pk):
        """Name the audience of a draft or scheduled issue, and publish it (now, or at its time) on a POST."""
        issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=pk)
        if not self.has_change_permission(request, issue):
            raise PermissionDenied
        now = db_now()
        if issue.status == IssueStatus.PUBLISHED and issue.publish_at <= now:
            self.message_user(request, f"“{issue}” is already published.", messages.WARNING)
            return redirect("admin:newsletters_issue_change", pk)
        when = issue.publish_at if issue.publish_at and issue.publish_at > now else None
        if request.method == "POST":
            issue_publish(issue=issue, now=now, publish_at=when)
            done = f"Scheduled “{issue}” for {when:%Y-%m-%d %H:%M %Z}." if when else f"Published “{issue}”."
            self.message_user(request, done, messages.SUCCESS)
            return redirect("admin:newsletters_issue_changelist")
        zone = request.session.get(EDITOR_ZONE_KEY) or settings.TIME_ZONE
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Publish “{issue.title}”?",
            "audiences": [_audience(issue)],
            "when": when,
            "zone": zone_named(zone).key,
        }
        return TemplateResponse(request, "admin/newsletters/issue_publish.html", context)

    def preview_view(self, request, pk):
        issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=pk)
        if not self.has_view_permission(request, issue):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "issue": issue,
            "title": f"Preview: {issue.title}",
        }
        try:
            context["body_html"] = markdown_to_html(issue.body)
        except MarkupError as error:
            context["markup_error"] = str(error)
        return TemplateResponse(request, "admin/newsletters/issue_preview.html", context)

    @admin.action(description="Publish now…", permissions=["change"])
    def publish_now(self, request, queryset):
        now = db_now()
        issues = list(queryset.select_related("newsletter").exclude(status=IssueStatus.PUBLISHED, publish_at__lte=now))
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Publish these issues now?",
                "audiences": [_audience(issue) for issue in issues],
                "action": "publish_now",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/newsletters/issue_publish.html", context)
        for issue in issues:
            issue_publish(issue=issue, now=now)
        self.message_user(request, f"Published {len(issues)} issue(s).", messages.SUCCESS)
        return None

    @admin.action(description="Schedule for a date and time…", permissions=["change"])
    def schedule(self, request, queryset):
        form = ScheduleForm(request.POST if "publish_at" in request.POST else None)
        if form.is_bound and form.is_valid():
            when: datetime.datetime = form.cleaned_data["publish_at"]
            for issue in queryset:
                issue_publish(issue=issue, now=db_now(), publish_at=when)
            self.message_user(request, f"Scheduled {queryset.count()} issue(s) for {when:%Y-%m-%d %H:%M %Z}.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Schedule issues",
            "form": form,
            "issues": queryset,
            "audiences": [_audience(issue) for issue in queryset.select_related("newsletter")],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/newsletters/issue_schedule.html", context)


def _audience(issue: Issue) -> dict:
    """Who a newly published issue goes to, and when each frequency's readers get it, for a confirmation page."""
    newsletter = issue.newsletter
    counts = audience_counted(newsletter=newsletter)
    at = f"{newsletter.send_time:%H:%M} their time"
    when = {
        Frequency.IMMEDIATE: "in the next digest run after it is out",
        Frequency.DAILY: f"at {at}",
        Frequency.WEEKLY: f"on {newsletter.get_weekly_day_display()} at {at}",
    }
    return {
        "issue": issue,
        "readers": sum(counts.values()),
        "parts": [
            (f"{counts[f]:,} {f.label.lower() if f != Frequency.IMMEDIATE else 'immediate'}", when[f])
            for f in Frequency
            if counts[f]
        ],
        "paused": newsletter.paused_at is not None,
    }


class SubscriptionInline(LabelledTabularInline):
    model = Subscription
    extra = 0
    fields = ["newsletter", "frequency", "status", "cursor", "next_due_at"]
    readonly_fields = ["cursor", "next_due_at"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    # created_at is on the subscriber's page: beside the bounce counts it pushed the list past 1280 px.
    list_display = ["email", "name", "status", "timezone", "confirmed"]
    list_filter = ["status", "subscriptions__newsletter", "timezone"]
    search_fields = ["email", "name"]
    inlines = [SubscriptionInline]

    @admin.display(description="Confirmed at", ordering="confirmed_at")
    def confirmed(self, obj):
        return list_time(obj.confirmed_at)

    actions = [
        csv_export_action(
            {name: name for name in ["email", "name", "timezone", "status", "confirmed_at"]}, filename="subscribers.csv"
        )
    ]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["subscriber", "newsletter", "frequency", "status", "cursor", "next_due_at"]
    list_filter = ["newsletter", "frequency", "status"]
    search_fields = ["subscriber__email", "subscriber__name"]
    list_select_related = ["subscriber", "newsletter"]
    raw_id_fields = ["subscriber"]
    actions = [
        # The columns import_subscribers reads, so an export can be imported elsewhere.
        csv_export_action(
            {
                "email": "subscriber__email",
                "name": "subscriber__name",
                "timezone": "subscriber__timezone",
                "newsletter": "newsletter__slug",
                "frequency": "frequency",
                "status": "status",
            },
            filename="subscriptions.csv",
        )
    ]


@admin.register(SignupRefusal)
class SignupRefusalAdmin(admin.ModelAdmin):
    """What the signup firewall turned away, per day and reason (read only)."""

    list_display = ["day", "reason", "count"]
    list_filter = ["reason"]
    date_hierarchy = "day"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
