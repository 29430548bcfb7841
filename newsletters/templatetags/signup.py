"""The dashboard's signup card: what the signup firewall refused in the last days, by reason."""

import datetime

from django import template
from django.db.models import Sum
from django.utils import timezone

from newsletters.firewall import challenge_required
from newsletters.models import SignupRefusal, SignupRefusalReason

register = template.Library()

CARD_DAYS = 7


@register.inclusion_tag("admin/newsletters/_signup_refusals_card.html")
def signup_refusals_card():
    """Refusals per reason over the last CARD_DAYS days (today in the site's time zone included)."""
    since = timezone.localdate() - datetime.timedelta(days=CARD_DAYS - 1)
    counts = dict(
        SignupRefusal.objects.filter(day__gte=since).values_list("reason").annotate(n=Sum("count")).order_by()
    )
    rows = [(label, counts.get(value, 0)) for value, label in SignupRefusalReason.choices]
    return {"rows": rows, "total": sum(counts.values()), "days": CARD_DAYS, "challenge_on": challenge_required()}
