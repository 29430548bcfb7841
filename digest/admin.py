"""Editor and operator admin: the dashboard, the Delivery ledger, bounce events, issue reports, previews and test sends."""

import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from digest import dashboard as board
from digest.bounces import suppression_lift
from digest.breaker import breaker_paused
from digest.charts import Series, bar_chart, line_chart
from digest.deliverability.report import deliverability_check
from digest.exceptions import RenderError
from digest.models import BounceEvent, BounceKind, Delivery, DeliveryStatus
from digest.previews import (
    FREQUENCIES,
    preview_clip_warnings,
    preview_draft,
    preview_id,
    preview_issue,
    preview_next,
    preview_personalize,
    preview_send_test,
    preview_warnings,
)
from newsletters.admin import IssueAdmin, NewsletterAdmin, SubscriberAdmin
from newsletters.conf import newsletters_settings
from newsletters.models import Attachment, Issue, IssueStatus, Newsletter, Subscriber, SubscriberStatus
from newsletters.testsends import SendTestRefused, testsend_run
from project.clock import db_now

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
        board.delivery_days_forget(queryset)  # their days are open again: count them live
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
            path("<int:pk>/report/", wrap(self.report), name="newsletters_issue_report"),
            path("live-preview/", wrap(require_POST(self.live_preview)), name="newsletters_issue_live_preview"),
            *super().get_urls(),
        ]

    change_form_template = "admin/digest/issue_change_form.html"

    @admin.display(description="Preview")
    def preview_link(self, obj):
        return format_html(
            '<a href="{}">Web</a> · <a href="{}">Email</a> · <a href="{}">{}</a>',
            reverse("admin:newsletters_issue_preview", args=[obj.pk]),
            reverse("admin:newsletters_issue_email", args=[obj.pk]),
            reverse("admin:newsletters_issue_report", args=[obj.pk]),
            "Report" if obj.state == "published" else "Who gets it",
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["live_preview_url"] = reverse("admin:newsletters_issue_live_preview")
        context["attachment_limit"] = newsletters_settings.MAX_ATTACHMENT_BYTES
        if obj is not None:
            context["report_url"] = reverse("admin:newsletters_issue_report", args=[obj.pk])
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def live_preview(self, request):
        """Render the digest of the issue being written, as JSON: HTML as sent, plain text, warnings.

        POST only (the admin checks the CSRF token); for editors who may add or change issues.
        """
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        try:
            newsletter_pk, issue_pk = preview_id(request.POST.get("newsletter")), preview_id(request.POST.get("issue"))
        except ValueError as error:
            return JsonResponse({"error": f"newsletter and issue: {error}."}, status=400)
        newsletter = Newsletter.objects.filter(pk=newsletter_pk).first()
        if newsletter is None:
            return JsonResponse({"error": "Choose a newsletter to see the email."}, status=400)
        if issue_pk is not None:
            issue = get_object_or_404(Issue, pk=issue_pk)
            if not self.has_change_permission(request, issue):
                raise PermissionDenied
            issue_pk = issue.pk
        try:
            new_files = [(str(name), int(size)) for name, size in json.loads(request.POST.get("files") or "[]")]
        except (ValueError, TypeError):
            return JsonResponse({"error": "files: a JSON list of [name, size] pairs."}, status=400)
        saved_files = [
            (attachment.filename, attachment.file.size)
            for attachment in Attachment.objects.filter(issue_id=issue_pk)
            if attachment.file.storage.exists(attachment.file.name)
        ]
        body = request.POST.get("body", "")
        title = request.POST.get("title", "").strip() or "(no title yet)"
        try:
            rendered = preview_draft(
                newsletter=newsletter, title=title, slug=request.POST.get("slug", ""), body=body, issue_pk=issue_pk
            )
        except (RenderError, OSError) as error:
            return JsonResponse({"error": f"The email cannot be rendered: {error}"}, status=400)
        text, html = preview_personalize(rendered, name=request.user.get_full_name() or request.user.get_username())
        return JsonResponse(
            {
                "subject": rendered.subject,
                "html": html,
                "text": text,
                "warnings": preview_warnings(body=body, attachment_sizes=saved_files + new_files)
                + preview_clip_warnings(rendered),
            }
        )

    def report(self, request, pk):
        """Before publishing, who gets this issue and when; after, what its digests did."""
        issue = self._issue(request, pk)
        if not request.user.has_perm("digest.view_delivery"):
            raise PermissionDenied
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "issue": issue,
            "title": f"{issue.title}: report",
            "time_zone": settings.TIME_ZONE,
        }
        if issue.state == "published":
            report = board.issue_report(issue=issue)
            context["report"] = report
            context["chart"] = bar_chart(
                title="Digests that carried this issue, by outcome",
                labels=[name for name in board.OUTCOMES],
                series=[
                    Series(name, [report.by_outcome[name] if other == name else 0 for other in board.OUTCOMES])
                    for name in board.OUTCOMES
                ],
            )
        else:
            publish_at, plans = board.issue_audience(issue=issue, now=now)
            context.update(publish_at=publish_at, plans=plans, readers=sum(plan.readers for plan in plans))
        return TemplateResponse(request, "admin/digest/issue_report.html", context)

    def _issue(self, request, pk):
        issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=pk)
        if not self.has_view_permission(request, issue):
            raise PermissionDenied
        return issue

    def email_preview(self, request, pk):
        issue = self._issue(request, pk)
        back = reverse("admin:newsletters_issue_change", args=[pk])
        try:
            rendered = preview_issue(issue=issue)
        except RenderError as error:  # e.g. Markdown saved before it was checked; saving the form says why
            self.message_user(request, f"The email cannot be rendered: {error}", messages.ERROR)
            return redirect(back)
        return _digest_page(
            request,
            self.admin_site,
            title=f"Email preview: {issue.title}",
            rendered=rendered,
            back_url=back,
            send_url=reverse("admin:newsletters_issue_send_test", args=[pk]),
        )

    def email_send_test(self, request, pk):
        issue = self._issue(request, pk)
        back = reverse("admin:newsletters_issue_email", args=[pk])
        if request.method != "POST":
            return redirect(back)
        try:
            rendered, name = preview_issue(issue=issue), request.user.get_full_name()
            to = testsend_run(  # checked, rate-limited and logged in newsletters.testsends
                user=request.user,
                to=request.POST.get("to", ""),
                what=f"issue {issue.pk}",
                send=lambda address: preview_send_test(rendered=rendered, to=address, name=name),
            )
        except (RenderError, OSError, SendTestRefused) as error:
            self.message_user(request, f"The test was not sent: {error}", messages.ERROR)
            return redirect(back)
        self.message_user(request, f"Sent a test to {', '.join(to)}.", messages.SUCCESS)
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
        back = reverse("admin:newsletters_newsletter_change", args=[pk])
        try:
            rendered, end = preview_next(newsletter=newsletter, frequency=frequency, now=timezone.now())
        except RenderError as error:
            self.message_user(request, f"The next digest cannot be rendered: {error}", messages.ERROR)
            return redirect(back)
        return _digest_page(
            request,
            self.admin_site,
            title=f"Next {frequency} digest of {newsletter.name}",
            rendered=rendered,
            back_url=back,
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


# --------------------------------------------------------------------------- dashboard


def _status_chart(title: str, counts, names: list[str]):
    """One bar per name, each in its own colour, from a Counter."""
    return bar_chart(
        title=title,
        labels=names,
        series=[Series(name, [counts[name] if other == name else 0 for other in names]) for name in names],
    )


def dashboard(request):
    """The editors' desk: readers, growth, digests per day, last runs and what is due, overall or per newsletter."""
    if not request.user.has_perms(["newsletters.view_subscription", "digest.view_delivery"]):
        raise PermissionDenied
    newsletters = list(Newsletter.objects.order_by("name"))
    chosen = next((n for n in newsletters if str(n.pk) == request.GET.get("newsletter")), None)
    newsletter_id = chosen.pk if chosen else None
    days = int(request.GET["days"]) if request.GET.get("days") in {str(d) for d in board.RANGES} else 30
    now = timezone.now()
    counts = board.subscriptions_counted(newsletter_id=newsletter_id)
    readers = board.readers_count(newsletter_id=newsletter_id, counts=counts)
    growth = board.readers_timeline(days=days, now=now, newsletter_id=newsletter_id)
    sent = board.deliveries_timeline(days=days, now=now, newsletter_id=newsletter_id)
    due = board.due_next_days(now=now, newsletter_id=newsletter_id, counts=counts)
    per = "week" if growth.by_week else "day"
    context = {
        **admin.site.each_context(request),
        "title": f"Dashboard: {chosen.name}" if chosen else "Dashboard",
        "newsletters": newsletters,
        "chosen": chosen,
        "days": days,
        "ranges": board.RANGES.items(),
        "readers": readers,
        "status_chart": _status_chart("Readers by status", readers.by_status, board.READER_STATUSES),
        "frequency_chart": _status_chart(
            "Active readers by frequency", readers.by_frequency, [f.value for f in board.FREQUENCIES]
        ),
        "growth_chart": line_chart(
            title=f"Readers per {per}: subscribed, confirmed, unsubscribed",
            labels=growth.labels,
            series=[Series(name, values) for name, values in growth.series.items()],
        ),
        "deliveries_chart": bar_chart(
            title=f"Digests per {per} by outcome",
            labels=sent.labels,
            series=[Series(name, values) for name, values in sent.series.items()],
        ),
        "due_chart": bar_chart(
            title="Readers due a digest in the next 7 days, per frequency",
            labels=due.labels,
            series=[Series(name, values) for name, values in due.series.items()],
        ),
        "due": due,
        "per": per,
        "runs": board.runs_recent(),
        "paused": breaker_paused(now=db_now(), newsletter_ids=[newsletter_id] if chosen else None),
        "can_resume": request.user.has_perm("newsletters.change_newsletter"),
    }
    return TemplateResponse(request, "admin/digest/dashboard.html", context)


def deliverability(request):
    """The deliverability check, run now: findings per From domain, each with the record to publish."""
    if not request.user.has_perm("digest.view_delivery"):
        raise PermissionDenied
    try:
        report, problem = deliverability_check(), ""
    except ImproperlyConfigured as error:
        report, problem = None, str(error)
    context = {**admin.site.each_context(request), "title": "Deliverability", "report": report, "problem": problem}
    return TemplateResponse(request, "admin/digest/deliverability.html", context)
