"""Webhooks in the admin: endpoints per newsletter (secret shown once), and the delivery log with replay."""

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.html import format_html

from hooks.delivery import endpoint_pause, endpoints_resume, events_replay
from hooks.models import Attempt, Endpoint, Event, EventStatus, EventType
from hooks.signing import secret_generate
from hooks.tasks import deliveries_enqueue
from project.clock import db_now


class EndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Endpoint
        fields = ["newsletter", "url", "events", "description", "owner_email"]


def _secret_shown_once(request, endpoint: Endpoint, secret: str) -> None:
    messages.warning(
        request,
        f"The signing secret of {endpoint.url} is {secret} — copy it now into the receiver: it is not shown again.",
    )


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["url", "newsletter", "event_list", "state", "waiting"]
    list_filter = ["newsletter"]
    search_fields = ["url", "description"]
    readonly_fields = [
        "secret_state",
        "paused_at",
        "pause_reason",
        "failures",
        "failing_since",
        "retry_at",
        "created_at",
    ]
    actions = ["resume", "pause", "rotate_secret"]

    def get_fieldsets(self, request, obj=None):
        fields = [(None, {"fields": ["newsletter", "url", "events", "description", "owner_email"]})]
        if obj is None:
            return fields  # nothing to show about delivery before there is an endpoint
        return [*fields, ("Delivery", {"fields": self.readonly_fields})]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("newsletter")
            .annotate(_waiting=Count("outbox", filter=Q(outbox__status=EventStatus.PENDING)))
        )

    @admin.display(description="Events")
    def event_list(self, endpoint: Endpoint) -> str:
        return ", ".join(endpoint.events)

    @admin.display(description="State")
    def state(self, endpoint: Endpoint) -> str:
        if endpoint.paused_at:
            return f"paused: {endpoint.pause_reason}"
        if endpoint.failures:
            return f"failing ({endpoint.failures} in a row), next try {timezone.localtime(endpoint.retry_at):%Y-%m-%d %H:%M %Z}"
        return "active"

    @admin.display(description="Waiting", ordering="_waiting")
    def waiting(self, endpoint: Endpoint) -> int:
        return endpoint._waiting

    @admin.display(description="Signing secret")
    def secret_state(self, endpoint: Endpoint) -> str:
        return "set; shown once when made (use “Rotate the signing secret” for a new one)" if endpoint.secret else "—"

    def save_model(self, request, obj, form, change):
        secret = None
        if not change:
            obj.secret = secret = secret_generate()
        super().save_model(request, obj, form, change)
        if secret:
            _secret_shown_once(request, obj, secret)

    @admin.action(
        description="Resume selected endpoints (their waiting events go out in order)", permissions=["change"]
    )
    def resume(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        resumed = endpoints_resume(endpoint_ids=ids)
        deliveries_enqueue(endpoint_ids=ids, inline=True)
        self.message_user(request, f"Resumed {resumed} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Pause selected endpoints (events are kept)", permissions=["change"])
    def pause(self, request, queryset):
        paused = sum(
            endpoint_pause(endpoint, reason=f"paused by {request.user.get_username()}", now=db_now(), notify=False)
            for endpoint in queryset.filter(paused_at__isnull=True).select_related("newsletter")
        )
        self.message_user(request, f"Paused {paused} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Rotate the signing secret of selected endpoints", permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            secret = secret_generate()
            Endpoint.objects.filter(pk=endpoint.pk).update(secret=secret)
            _secret_shown_once(request, endpoint, secret)


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = readonly_fields = ["at", "status_code", "error", "response", "milliseconds"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The delivery log: every event, its state, and each attempt with the endpoint's answer."""

    list_display = ["created_at", "event_type", "endpoint", "key", "status", "attempts", "delivered_at"]
    list_filter = ["status", "type", "endpoint__newsletter", "endpoint"]
    search_fields = ["webhook_id", "key"]
    list_select_related = ["endpoint"]
    fields = readonly_fields = [
        "webhook_id",
        "endpoint",
        "type",
        "key",
        "status",
        "created_at",
        "attempts",
        "delivered_at",
        "payload",
    ]
    inlines = [AttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # a log: read, replayed, never edited

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("hooks.change_event")

    @admin.display(description="Type", ordering="type")
    def event_type(self, event: Event) -> str:
        return event.type

    @admin.display(description="Body")
    def payload(self, event: Event) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap; overflow-wrap: anywhere">{}</pre>',
            json.dumps(json.loads(event.body), indent=2, ensure_ascii=False),
        )

    @admin.action(description="Replay selected events (same webhook-id and body)", permissions=["replay"])
    def replay(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        endpoint_ids = events_replay(event_ids=ids)
        deliveries_enqueue(endpoint_ids=endpoint_ids, inline=True)
        paused = Endpoint.objects.filter(pk__in=endpoint_ids, paused_at__isnull=False).count()
        self.message_user(request, f"{len(ids)} event(s) queued again.", messages.SUCCESS)
        if paused:
            self.message_user(
                request, f"{paused} of their endpoints are paused: resume them to deliver.", messages.WARNING
            )
