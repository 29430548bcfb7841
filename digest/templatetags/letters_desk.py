"""The dashboard's letters card: onboarding mails and re-confirmation, counted (never per reader)."""

import datetime

from django import template
from django.db.models import Count, F, Q
from django.utils import timezone

from digest.conf import digest_settings
from digest.models import DeliveryStatus, Letter, LetterKind
from newsletters.models import Subscription, SubscriptionStatus

register = template.Library()

CARD_DAYS = 30


@register.inclusion_tag("admin/digest/_letters_card.html")
def letters_card():
    """Letters sent and waiting over the last CARD_DAYS days; re-confirmations asked, kept, paused."""
    since = timezone.now() - datetime.timedelta(days=CARD_DAYS)
    waiting = [DeliveryStatus.PENDING, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING]
    counts = (
        Letter.objects.filter(Q(sent_at__gte=since) | Q(status__in=waiting))
        .values("kind")
        .annotate(
            sent=Count("id", filter=Q(status=DeliveryStatus.SENT)),
            waiting=Count("id", filter=Q(status__in=waiting)),
        )
        .values_list("kind", "sent", "waiting")
        .order_by()
    )
    by_kind = {kind: (sent, open_) for kind, sent, open_ in counts}
    asked = Letter.objects.filter(kind=LetterKind.RECONFIRM, status=DeliveryStatus.SENT, sent_at__gte=since)
    kept = asked.filter(subscription__subscriber__last_link_at__gte=F("sent_at")).count()
    paused = Subscription.objects.filter(status=SubscriptionStatus.PAUSED, paused_quiet=True).count()
    rows = [(label, *by_kind.get(value, (0, 0))) for value, label in LetterKind.choices]
    return {
        "rows": rows,
        "days": CARD_DAYS,
        "asked": asked.count(),
        "kept": kept,
        "paused": paused,
        "reconfirm_on": bool(digest_settings.RECONFIRM_MONTHS),
    }
