"""Editor and operator admin: the Delivery ledger, bounce events, digest previews and test sends."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from digest.bounces import suppression_lift
from digest.exceptions import RenderError
from digest.models import BounceEvent, BounceKind, Delivery, DeliveryStatus
from digest.previews import FREQUENCIES, preview_issue, preview_next, preview_personalize, preview_send_test
from newsletters.admin import IssueAdmin, NewsletterAdmin, SubscriberAdmin
from newsletters.models import Issue, IssueStatus, Newsletter, Subscriber, SubscriberStatus

BOUNCES = Q(kind__in=[BounceKind.HARD, BounceKind.SOFT])
COMPLAINTS = Q(kind=BounceKind.COMPLAINT)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "recipient",
        "newsletter",
        "window_start",
        "window_end",
        "status",
        "attempts",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status", "newsletter"]
    search_fields = ["subscription__subscriber__email", "message_id"]
    list_select_related = ["subscription__subscriber", "newsletter"]
    date_hierarchy = "window_end"
    actions = ["retry"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Recipient", ordering="subscription__subscriber__email")
    def recipient(self, obj):
        return obj.subscription.subscriber.email

    @admin.action(description="Retry selected failed deliveries", permissions=["change"])
    def retry(self, request, queryset):
        retried = busy = 0
        for delivery in queryset.filter(status=DeliveryStatus.FAILED):
            try:
                with transaction.atomic():
                    Delivery.objects.filter(pk=delivery.pk).update(
                        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), attempts=0, claimed_by=""
                    )
                retried += 1
            except IntegrityError:  # another digest of this subscription is in flight
                busy += 1
        self.message_user(request, f"{retried} delivery(ies) will be retried by the next run.", messages.SUCCESS)
        if busy:
            self.message_user(request, f"{busy} skipped: their subscription has a digest in flight.", messages.WARNING)


class IssueFilter(admin.SimpleListFilter):
    """Events about the digests that carried one issue (the issue admin's counts link here)."""

    title = "issue"
    parameter_name = "issue"

    def lookups(self, request, model_admin):
        issue = self._issue(self.value())
        return [(str(issue.pk), str(issue))] if issue else []

    def queryset(self, request, queryset):
        issue = self._issue(self.value())
        if issue is None:
            return queryset
        return queryset.filter(
            delivery__newsletter_id=issue.newsletter_id,
            delivery__window_start__lt=issue.publish_at,
            delivery__window_end__gte=issue.publish_at,
        )

    @staticmethod
    def _issue(value) -> Issue | None:
        if not value or not str(value).isdigit():
            return None
        return Issue.objects.filter(pk=int(value), status=IssueStatus.PUBLISHED).first()


@admin.register(BounceEvent)
class BounceEventAdmin(admin.ModelAdmin):
    """Every bounce, complaint and ESP event, and every lifted suppression: read only."""

    list_display = ["occurred_at", "subscriber_link", "kind", "action", "status", "source", "score", "short_diagnostic"]
    list_filter = ["kind", "action", "source", "delivery__newsletter", IssueFilter]
    search_fields = ["subscriber__email", "diagnostic", "status"]
    list_select_related = ["subscriber"]
    date_hierarchy = "occurred_at"
    readonly_fields = [f.name for f in BounceEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Subscriber", ordering="subscriber__email")
    def subscriber_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:newsletters_subscriber_change", args=[obj.subscriber_id]),
            obj.subscriber,
        )

    @admin.display(description="Diagnostic")
    def short_diagnostic(self, obj):
        return obj.diagnostic if len(obj.diagnostic) <= 90 else obj.diagnostic[:89] + "…"


class BounceEventInline(admin.TabularInline):
    """A subscriber's history: what came back, and what the policy or an editor did."""

    model = BounceEvent
    fields = ["occurred_at", "kind", "action", "status", "source", "score", "diagnostic"]
    readonly_fields = fields
    ordering = ["-occurred_at", "-id"]
    extra = 0
    verbose_name = "bounce or complaint"
    verbose_name_plural = "Bounces and complaints (history)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SubscriberBounceAdmin(SubscriberAdmin):
    """The subscriber admin, plus bounce and complaint counts, the history, and lifting a suppression."""

    # Beside the status, where they are seen without scrolling the list sideways.
    list_display = [
        *SubscriberAdmin.list_display[:3],
        "bounce_count",
        "complaint_count",
        *SubscriberAdmin.list_display[3:],
    ]
    inlines = [*SubscriberAdmin.inlines, BounceEventInline]
    actions = [*SubscriberAdmin.actions, "lift_suppression"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _bounces=Count("bounce_events", filter=Q(bounce_events__kind__in=[BounceKind.HARD, BounceKind.SOFT])),
                _complaints=Count("bounce_events", filter=Q(bounce_events__kind=BounceKind.COMPLAINT)),
            )
        )

    @admin.display(description="Bounces", ordering="_bounces")
    def bounce_count(self, obj):
        return obj._bounces

    @admin.display(description="Complaints", ordering="_complaints")
    def complaint_count(self, obj):
        return obj._complaints

    @admin.action(description="Lift the bounce suppression of selected subscribers", permissions=["change"])
    def lift_suppression(self, request, queryset):
        by = request.user.get_username()
        lifted = sum(
            suppression_lift(subscriber=subscriber, by=by, now=timezone.now())
            for subscriber in queryset.filter(status=SubscriberStatus.SUPPRESSED)
        )
        self.message_user(
            request,
            f"{lifted} subscriber(s) will get digests again, from now on (recorded in their history).",
            messages.SUCCESS,
        )
        if skipped := queryset.count() - lifted:
            self.message_user(request, f"{skipped} skipped: not suppressed.", messages.WARNING)


def _per_issue(events: Q):
    """Count, per issue, the events about digests that carried it (its publish time in their window)."""
    matching = (
        BounceEvent.objects.filter(
            events,
            delivery__newsletter=OuterRef("newsletter"),
            delivery__window_start__lt=OuterRef("publish_at"),
            delivery__window_end__gte=OuterRef("publish_at"),
        )
        .order_by()
        .values("delivery__newsletter")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(matching, output_field=IntegerField()), 0)


def _digest_page(request, admin_site, *, title, rendered, back_url, send_url=None, extra=None):
    name = request.user.get_full_name() or request.user.get_username()
    context = {
        **admin_site.each_context(request),
        "title": title,
        "back_url": back_url,
        "send_url": send_url,
        **(extra or {}),
    }
    if rendered is not None:
        text, html = preview_personalize(rendered, name=name)
        context.update(subject=rendered.subject, text=text, html=html, files=rendered.attachments)
    return TemplateResponse(request, "admin/digest/preview.html", context)


class IssueDigestAdmin(IssueAdmin):
    """The issue admin, plus the email preview, "send a test to me", and bounce and complaint counts."""

    list_display = [*IssueAdmin.list_display[:3], "bounce_count", "complaint_count", *IssueAdmin.list_display[3:]]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_bounces=_per_issue(BOUNCES), _complaints=_per_issue(COMPLAINTS))

    @admin.display(description="Bounces", ordering="_bounces")
    def bounce_count(self, obj):
        return _events_link(obj._bounces, obj, "hard,soft")

    @admin.display(description="Complaints", ordering="_complaints")
    def complaint_count(self, obj):
        return _events_link(obj._complaints, obj, "complaint")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/email/", wrap(self.email_preview), name="newsletters_issue_email"),
            path("<int:pk>/email/send-test/", wrap(self.email_send_test), name="newsletters_issue_send_test"),
            *super().get_urls(),
        ]

    @admin.display(description="Preview")
    def preview_link(self, obj):
        return format_html(
            '<a href="{}">Web</a> · <a href="{}">Email</a>',
            reverse("admin:newsletters_issue_preview", args=[obj.pk]),
            reverse("admin:newsletters_issue_email", args=[obj.pk]),
        )

    def _issue(self, request, pk):
        issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=pk)
        if not self.has_view_permission(request, issue):
            raise PermissionDenied
        return issue

    def email_preview(self, request, pk):
        issue = self._issue(request, pk)
        return _digest_page(
            request,
            self.admin_site,
            title=f"Email preview: {issue.title}",
            rendered=preview_issue(issue=issue),
            back_url=reverse("admin:newsletters_issue_change", args=[pk]),
            send_url=reverse("admin:newsletters_issue_send_test", args=[pk]),
        )

    def email_send_test(self, request, pk):
        issue = self._issue(request, pk)
        back = reverse("admin:newsletters_issue_email", args=[pk])
        if request.method != "POST":
            return redirect(back)
        if not request.user.email:
            self.message_user(request, "Your user has no email address; add one to receive tests.", messages.ERROR)
            return redirect(back)
        try:
            sent = preview_send_test(
                rendered=preview_issue(issue=issue), to=request.user.email, name=request.user.get_full_name()
            )
        except (RenderError, OSError) as error:
            self.message_user(request, f"The test was not sent: {error}", messages.ERROR)
            return redirect(back)
        self.message_user(request, f"Sent {sent} test message to {request.user.email}.", messages.SUCCESS)
        return redirect(back)


class NewsletterDigestAdmin(NewsletterAdmin):
    """The newsletter admin, plus a preview of its next daily or weekly digest."""

    list_display = [*NewsletterAdmin.list_display, "next_digest_link"]

    @admin.display(description="Next digest")
    def next_digest_link(self, obj):
        return format_html('<a href="{}">Preview</a>', reverse("admin:newsletters_newsletter_next", args=[obj.pk]))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/next-digest/", wrap(self.next_digest), name="newsletters_newsletter_next"),
            *super().get_urls(),
        ]

    def next_digest(self, request, pk):
        newsletter = get_object_or_404(Newsletter, pk=pk)
        if not self.has_view_permission(request, newsletter):
            raise PermissionDenied
        frequency = request.GET.get("frequency", "daily")
        if frequency not in FREQUENCIES:
            frequency = "daily"
        rendered, end = preview_next(newsletter=newsletter, frequency=frequency, now=timezone.now())
        return _digest_page(
            request,
            self.admin_site,
            title=f"Next {frequency} digest of {newsletter.name}",
            rendered=rendered,
            back_url=reverse("admin:newsletters_newsletter_change", args=[pk]),
            extra={"frequencies": FREQUENCIES, "frequency": frequency, "send_at": end},
        )


def _events_link(count: int, issue: Issue, kinds: str):
    if issue.status != IssueStatus.PUBLISHED:
        return "–"  # a draft was in no digest, whatever its date
    if not count:
        return 0
    url = reverse("admin:digest_bounceevent_changelist")
    return format_html('<a href="{}?issue={}&kind__in={}">{}</a>', url, issue.pk, kinds, count)


admin.site.unregister(Issue)
admin.site.register(Issue, IssueDigestAdmin)
admin.site.unregister(Subscriber)
admin.site.register(Subscriber, SubscriberBounceAdmin)
admin.site.unregister(Newsletter)
admin.site.register(Newsletter, NewsletterDigestAdmin)
