"""Issues and newsletters in the admin, with the engine's views: email previews, test sends, the live preview, who gets an issue and what its digests did."""

import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from digest.admin.deliveries import (
    BOUNCES,
    COMPLAINTS,
)
from digest.admin.onboarding import OnboardingStepInline
from digest.desk import dashboard as board
from digest.desk import reports
from digest.desk.charts import Series, bar_chart
from digest.desk.gallery import gallery_draw, gallery_issue
from digest.desk.previews import (
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
from digest.exceptions import RenderError
from digest.models import BounceEvent, carrying
from newsletters.admin import IssueAdmin, NewsletterAdmin
from newsletters.conf import newsletters_settings
from newsletters.models import Attachment, Issue, IssueStatus, Newsletter
from newsletters.testsends import SendTestRefused, testsend_run


def _per_issue(events: Q):
    """Count, per issue, the events about digests that carried it (its publish time in their window)."""
    matching = (
        BounceEvent.objects.filter(
            events,
            carrying(newsletter=OuterRef("newsletter"), publish_at=OuterRef("publish_at"), prefix="delivery__"),
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
        if request.user.has_perm("newsletters.add_image"):
            context["image_upload_url"] = reverse("admin:newsletters_image_upload")
            context["image_library_url"] = reverse("admin:newsletters_image_library")
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
                newsletter=newsletter,
                title=title,
                slug=request.POST.get("slug", ""),
                body=body,
                issue_pk=issue_pk,
                now=timezone.now(),
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
        if issue.state_at(now) == "published":
            report = reports.issue_report(issue=issue)
            context["report"] = report
            context["links"] = reports.links_top(issue=issue)
            context["chart"] = bar_chart(
                title="Digests that carried this issue, by outcome",
                labels=[name for name in board.OUTCOMES],
                series=[
                    Series(name, [report.by_outcome[name] if other == name else 0 for other in board.OUTCOMES])
                    for name in board.OUTCOMES
                ],
            )
        else:
            publish_at, plans = reports.issue_audience(issue=issue, now=now)
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
            rendered = preview_issue(issue=issue, now=timezone.now())
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
            rendered, name = preview_issue(issue=issue, now=timezone.now()), request.user.get_full_name()
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
    inlines = [*NewsletterAdmin.inlines, OnboardingStepInline]

    @admin.display(description="Next digest")
    def next_digest_link(self, obj):
        return format_html(
            '<a href="{}">Preview</a> · <a href="{}">Templates</a>',
            reverse("admin:newsletters_newsletter_next", args=[obj.pk]),
            reverse("admin:newsletters_newsletter_gallery", args=[obj.pk]),
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/next-digest/", wrap(self.next_digest), name="newsletters_newsletter_next"),
            path("<int:pk>/templates/", wrap(self.gallery), name="newsletters_newsletter_gallery"),
            *super().get_urls(),
        ]

    def gallery(self, request, pk):
        """Every template on disk, drawn on the newsletter's latest issue with its branding."""
        newsletter = get_object_or_404(Newsletter, pk=pk)
        if not self.has_view_permission(request, newsletter):
            raise PermissionDenied
        chosen = request.GET.get("newsletter", "")
        if chosen.isdigit() and int(chosen) != newsletter.pk:
            return redirect("admin:newsletters_newsletter_gallery", int(chosen))
        issue = gallery_issue(newsletter)
        name = request.user.get_full_name() or request.user.get_username()
        drawings = (
            gallery_draw(
                newsletter=newsletter,
                issue=issue,
                personalize=lambda rendered: preview_personalize(rendered, name=name),
                now=timezone.now(),
            )
            if issue
            else []
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Templates of {newsletter.name}",
            "opts": self.model._meta,
            "newsletter": newsletter,
            "newsletters": Newsletter.objects.order_by("name"),
            "issue": issue,
            "drawings": drawings,
            "change_url": reverse("admin:newsletters_newsletter_change", args=[pk]),
        }
        return TemplateResponse(request, "admin/digest/gallery.html", context)

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
