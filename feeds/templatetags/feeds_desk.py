"""What the editors' dashboard shows of feeds, without the dashboard's view knowing about them."""

from django import template

from feeds.models import Feed

register = template.Library()


@register.simple_tag
def feeds_failing(newsletter=None) -> list[Feed]:
    """Active feeds whose last fetch failed, latest failure first (of one newsletter when given)."""
    feeds = Feed.objects.filter(active=True, newsletter__active=True).exclude(last_error="")
    if newsletter is not None:
        feeds = feeds.filter(newsletter=newsletter)
    return list(feeds.select_related("newsletter").order_by("-last_error_at"))
