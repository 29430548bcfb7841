"""Feeds in the admin: which newsletter follows what, and how each one's last fetch went."""

from django.contrib import admin, messages
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timezone import localtime

from feeds.models import Feed
from feeds.services import feed_fetch
from project.clock import db_now


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["name", "newsletter", "mode", "last_fetch"]
    list_filter = ["newsletter", "mode", "active"]
    search_fields = ["url", "title"]
    fields = ["newsletter", "url", "mode", "active", "title", "last_fetched_at", "last_error", "last_error_at"]
    readonly_fields = ["title", "last_fetched_at", "last_error", "last_error_at"]
    actions = ["fetch_now"]

    @admin.display(description="Feed", ordering="url")
    def name(self, obj):
        # Narrow enough that the last fetch's column fits beside the filters at 1280 px.
        return obj.title or Truncator(obj.url.split("://", 1)[-1]).chars(40)

    @admin.display(description="Last fetch", ordering="last_error_at")
    def last_fetch(self, obj):
        """The last error and its time while the feed fails, else when it was last read."""
        if not obj.active:
            return "Not fetched: inactive"
        if obj.last_error:
            when = date_format(localtime(obj.last_error_at), "DATETIME_FORMAT")
            return format_html("<strong>Failed</strong> {}: {}", when, Truncator(obj.last_error).chars(120))
        if obj.last_fetched_at is None:
            return "Not yet"
        return format_html("Read {}", date_format(localtime(obj.last_fetched_at), "DATETIME_FORMAT"))

    @admin.action(description="Fetch selected feeds now", permissions=["change"])
    def fetch_now(self, request, queryset):
        now = db_now()
        for feed in queryset.select_related("newsletter"):
            outcome = feed_fetch(feed=feed, now=now)
            level = messages.ERROR if outcome == "failed" else messages.SUCCESS
            detail = feed.last_error if outcome == "failed" else _OUTCOMES[outcome]
            self.message_user(request, f"{feed}: {detail}", level)


_OUTCOMES = {
    "issues": "an issue of its new items was made.",
    "noted": "first fetch: its items were noted; later ones make issues.",
    "unchanged": "nothing new.",
}
