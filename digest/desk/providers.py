"""Digests per mailbox provider: how many were sent, deferred and failed, today and over the dashboard's range.

Sending paces itself per provider (digest.sending.pacing), so a throttling provider shows
here as deferred digests while the others are sent. One grouped query over the ledger,
joined with the readers' addresses and grouped by their domain (no row is loaded per
digest); the domains are then named by digest.providers, the same rule sending uses. The
few largest providers are listed; the rest are summed in one line.
"""

import datetime
from dataclasses import dataclass, field

from django.db.models import BooleanField, Case, Count, F, Value, When
from django.db.models.functions import Lower, StrIndex, Substr
from django.utils import timezone

from digest.models import Delivery, DeliveryStatus
from digest.providers import provider_of

OUTCOMES = (DeliveryStatus.SENT, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED)
SHOWN = 8  # providers listed one by one; the others are summed


@dataclass
class ProviderCount:
    """One provider's digests by outcome, today and over the range (today included)."""

    name: str
    today: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    recent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    domains: int = 0  # for the summed line: how many providers it holds

    @property
    def total(self) -> int:
        return sum(self.recent.values())


def _day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=timezone.get_current_timezone())


def deliveries_by_provider(
    *, days: int, now: datetime.datetime, newsletter_id: int | None = None, shown: int = SHOWN
) -> list[ProviderCount]:
    """Digests sent, deferred and failed per provider, by the day their window ended (as the
    dashboard counts them): today, and over the last `days` days; the largest `shown` first,
    then one line for the rest."""
    today = timezone.localdate(now)
    start = _day_start(today - datetime.timedelta(days=days - 1))
    today_start = _day_start(today)
    deliveries = Delivery.objects.filter(
        window_end__gte=start, window_end__lt=_day_start(today + datetime.timedelta(days=1)), status__in=OUTCOMES
    )
    if newsletter_id is not None:
        deliveries = deliveries.filter(newsletter_id=newsletter_id)
    email = F("subscription__subscriber__email")
    rows = (
        deliveries.annotate(
            domain=Lower(Substr(email, StrIndex(email, Value("@")) + 1)),
            is_today=Case(
                When(window_end__gte=today_start, then=Value(True)), default=Value(False), output_field=BooleanField()
            ),
        )
        .values_list("domain", "status", "is_today")
        .annotate(n=Count("id"))
        .order_by()
    )
    providers: dict[str, ProviderCount] = {}
    for domain, status, is_today, n in rows:
        name = provider_of(f"@{domain}")
        counted = providers.setdefault(name, ProviderCount(name))
        counted.recent[status] += n
        if is_today:
            counted.today[status] += n
    ranked = sorted(providers.values(), key=lambda p: (-p.total, p.name))
    if len(ranked) <= shown:
        return ranked
    rest = ProviderCount(f"{len(ranked) - shown + 1} other domains", domains=len(ranked) - shown + 1)
    for other in ranked[shown - 1 :]:
        for status in OUTCOMES:
            rest.recent[status] += other.recent[status]
            rest.today[status] += other.today[status]
    return [*ranked[: shown - 1], rest]
