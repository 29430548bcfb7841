"""The ledger and returned mail in the admin: deliveries (with retry), bounce and complaint events, and each subscriber's."""

from django.contrib import admin, messages
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from digest.desk import dashboard as board
from digest.models import BounceEvent, BounceKind, Delivery, DeliveryStatus, carrying
from digest.returns.policy import suppression_lift
from newsletters.admin import SubscriberAdmin
from newsletters.admin_parts import list_time
from newsletters.models import Issue, IssueStatus, SubscriberStatus

BOUNCES = Q(kind__in=[BounceKind.HARD, BounceKind.SOFT])
COMPLAINTS = Q(kind=BounceKind.COMPLAINT)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    # What an editor looks for first, left to right; all of it fits a 1280 px screen beside the
    # navigation and the filters (digest/static/digest/admin.css), the whole error on the row's page.
    list_display = ["recipient", "status", "newsletter", "window", "sent", "attempts", "short_error"]
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

    @admin.display(description="Window", ordering="window_end")
    def window(self, obj):
        start, end = timezone.localtime(obj.window_start), timezone.localtime(obj.window_end)
        first = "j M" if start.year == end.year else "j M Y"
        return f"{date_format(start, first)} – {date_format(end, 'j M Y')}"

    @admin.display(description="Sent at", ordering="sent_at")
    def sent(self, obj):
        return list_time(obj.sent_at)

    @admin.display(description="Last error", ordering="last_error")
    def short_error(self, obj):
        return _cut(obj.last_error)

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
        board.delivery_days_forget(queryset)  # their days are open again: count them live
        self.message_user(request, f"{retried} delivery(ies) will be retried by the next run.", messages.SUCCESS)
        if busy:
            self.message_user(request, f"{busy} skipped: their subscription has a digest in flight.", messages.WARNING)


def _cut(text: str):
    """A long text as a list shows it: one line, cut by the stylesheet, the whole of it as its tooltip."""
    if not text:
        return "–"
    return format_html('<span title="{}">{}</span>', text, text if len(text) <= 90 else text[:89] + "…")


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
            carrying(newsletter=issue.newsletter_id, publish_at=issue.publish_at, prefix="delivery__")
        )

    @staticmethod
    def _issue(value) -> Issue | None:
        if not value or not str(value).isdigit():
            return None
        return Issue.objects.filter(pk=int(value), status=IssueStatus.PUBLISHED).first()


@admin.register(BounceEvent)
class BounceEventAdmin(admin.ModelAdmin):
    """Every bounce, complaint and ESP event, and every lifted suppression: read only."""

    list_display = ["occurred", "subscriber_link", "kind", "action", "status", "source", "score", "short_diagnostic"]
    list_filter = ["kind", "action", "source", "delivery__newsletter", IssueFilter]
    search_fields = ["subscriber__email", "diagnostic", "status"]
    list_select_related = ["subscriber"]
    date_hierarchy = "occurred_at"
    readonly_fields = [f.name for f in BounceEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Occurred at", ordering="occurred_at")
    def occurred(self, obj):
        return list_time(obj.occurred_at)

    @admin.display(description="Subscriber", ordering="subscriber__email")
    def subscriber_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:newsletters_subscriber_change", args=[obj.subscriber_id]),
            obj.subscriber,
        )

    @admin.display(description="Diagnostic")
    def short_diagnostic(self, obj):
        return _cut(obj.diagnostic)


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
