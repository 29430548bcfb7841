"""The admin's import of subscribers: upload a CSV file, see its preview, choose invite or consent, follow the task.

Its own permission (`newsletters.add_subscriberimport`, the "Newsletter owner" role's):
bringing readers in is a matter of consent, so editors, who write issues, may not. The
records are kept as the proof of consent and cannot be changed or deleted here.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path

from newsletters.exceptions import NewslettersError
from newsletters.models import ImportMode, ImportStatus, Newsletter, SubscriberImport
from newsletters.subscriber_imports import subscriber_import_preview, subscriber_import_start, upload_read
from newsletters.subscribers_csv import IMPORT_COLUMNS, MAX_CSV_BYTES
from newsletters.tasks import subscribers_import_task
from project.clock import db_now

# Rows the preview shows; the counts cover the whole file.
PREVIEW_ROWS = 10
PREVIEW_ERRORS = 100


class UploadForm(forms.Form):
    newsletter = forms.ModelChoiceField(Newsletter.objects.order_by("name"))
    file = forms.FileField(
        label="CSV file",
        help_text=f"UTF-8, columns {', '.join(IMPORT_COLUMNS)}; the newsletter column may be left out.",
    )


class StartForm(forms.Form):
    mode = forms.ChoiceField(choices=ImportMode.choices, widget=forms.RadioSelect, label="The new addresses")


def _summary(counts: dict) -> list[tuple[str, int]]:
    """The end-of-import counts an editor reads: new, updated, skipped, errors."""
    rows = [
        ("New readers", counts.get("subscribers_created", 0)),
        ("New subscriptions", counts.get("subscriptions_created", 0)),
        ("Updated subscriptions", counts.get("subscriptions_updated", 0)),
        ("Unchanged", counts.get("unchanged", 0)),
        ("Skipped: unsubscribed or suppressed", counts.get("skipped_opted_out", 0)),
        ("Errors: rows refused", counts.get("invalid", 0)),
    ]
    if "invitations" in counts:
        rows.append(("Invitations to send", counts["invitations"]))
    return rows


@admin.register(SubscriberImport)
class SubscriberImportAdmin(admin.ModelAdmin):
    list_display = ["file_name", "newsletter", "mode", "status", "imported_by_name", "created_at", "finished_at"]
    list_filter = ["status", "mode", "newsletter"]
    search_fields = ["file_name", "imported_by_name"]
    exclude = ["text"]
    readonly_fields = [
        "newsletter",
        "file_name",
        "mode",
        "imported_by",
        "imported_by_name",
        "created_at",
        "status",
        "rows_total",
        "rows_done",
        "counts",
        "errors",
        "failure",
        "finished_at",
    ]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of consent

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/start/", wrap(self.start_view), name="newsletters_subscriberimport_start"),
            path("<int:pk>/progress/", wrap(self.progress_view), name="newsletters_subscriberimport_progress"),
            *super().get_urls(),
        ]

    def _context(self, request, **values) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **values}

    def add_view(self, request, form_url="", extra_context=None):
        """Upload a file and show its preview; nothing but the upload's record is written."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                text = upload_read(data=upload.read(MAX_CSV_BYTES + 1), file_name=upload.name)
                record, valid, report = subscriber_import_preview(
                    newsletter=form.cleaned_data["newsletter"],
                    file_name=upload.name,
                    text=text,
                    user=request.user,
                    now=db_now(),
                )
            except NewslettersError as error:
                form.add_error("file", f"{error} Nothing was imported.")
            else:
                context = self._context(
                    request,
                    title=f"Import {record.file_name} into {record.newsletter}?",
                    record=record,
                    rows=valid[:PREVIEW_ROWS],
                    valid=len(valid),
                    counts=report.counts,
                    errors=report.errors[:PREVIEW_ERRORS],
                    more_errors=max(0, len(report.errors) - PREVIEW_ERRORS),
                    start_form=StartForm(),
                )
                return TemplateResponse(request, "admin/newsletters/import_preview.html", context)
        context = self._context(request, title="Import subscribers", form=form, columns=IMPORT_COLUMNS)
        return TemplateResponse(request, "admin/newsletters/import_upload.html", context)

    def start_view(self, request, pk):
        """Start a previewed import as a task with the grounds chosen (POST), then show its progress."""
        record = get_object_or_404(SubscriberImport, pk=pk)
        if not self.has_add_permission(request) or request.method != "POST":
            raise PermissionDenied
        form = StartForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "Choose whether to invite the new addresses or that you have their consent.")
            return redirect("admin:newsletters_subscriberimport_add")
        if subscriber_import_start(record=record, mode=form.cleaned_data["mode"], user=request.user, now=db_now()):
            subscribers_import_task.enqueue(import_id=record.pk)
        return redirect("admin:newsletters_subscriberimport_progress", pk)

    def progress_view(self, request, pk):
        """The import's progress (the page reloads itself while it runs), then its summary."""
        record = get_object_or_404(SubscriberImport.objects.select_related("newsletter"), pk=pk)
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        running = record.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)
        context = self._context(
            request,
            title=f"Import of {record.file_name}",
            record=record,
            running=running,
            percent=round(100 * record.rows_done / record.rows_total) if record.rows_total else 0,
            summary=_summary(record.counts) if record.status == ImportStatus.DONE else [],
            errors=record.errors[:PREVIEW_ERRORS],
            more_errors=max(0, record.counts.get("invalid", 0) - PREVIEW_ERRORS),
        )
        return TemplateResponse(request, "admin/newsletters/import_progress.html", context)
