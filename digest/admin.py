"""Editor and operator admin: the Delivery ledger, digest previews and test sends."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from digest.exceptions import RenderError
from digest.models import Delivery, DeliveryStatus
from digest.previews import FREQUENCIES, preview_issue, preview_next, preview_personalize, preview_send_test
from newsletters.admin import IssueAdmin, NewsletterAdmin
from newsletters.models import Issue, Newsletter


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
    """The issue admin, plus the email preview and "send a test to me"."""

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


admin.site.unregister(Issue)
admin.site.register(Issue, IssueDigestAdmin)
admin.site.unregister(Newsletter)
admin.site.register(Newsletter, NewsletterDigestAdmin)
