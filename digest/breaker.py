"""The circuit breaker: a newsletter whose recent digests bounce or draw complaints past the limits stops sending.

Its rates are counted after every batch a sender records (digest.run) and whenever a bounce
or complaint about one of its digests is recorded (digest.returns.policy: DSNs and ESP events come
back minutes or hours later), over its digests attempted in the last DIGEST_BREAKER_HOURS,
or since it was last resumed if that is later. Like claims' leases (digest.sending.lease) this is
judged on the database's clock: a digest's attempt is its claim's stamp, and a resume is
stamped with the database's time, so no machine's clock (nor a run replayed with --now)
moves the window:

- hard bounces: digests the relay refused with a 5xx, and hard DSNs or ESP events about
  digests it accepted;
- temporary failures: soft DSNs or ESP events (4.x.x reported after the relay accepted the
  message). A relay's own 4xx replies are not counted: they are throttling, which backoff
  answers, and the digest is retried;
- complaints: ARF reports and ESP complaint events.

Once at least DIGEST_BREAKER_MIN_SENT were sent and one share passes its setting, the
newsletter is paused (Newsletter.paused_at, with the reason): senders stop claiming its
digests (digest.sending.ledger), which stay planned, with no attempt counted, and go out once an
owner resumes it (the dashboard's button). The process whose update paused it mails ADMINS,
so they hear of each pause once. Every other newsletter keeps sending.
"""

import datetime
import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.mail import mail_admins
from django.db.models import Count
from django.urls import reverse

from digest.conf import digest_settings
from digest.models import OPEN_STATUSES, BounceEvent, BounceKind, Delivery, DeliveryStatus
from newsletters.models import Newsletter

logger = logging.getLogger(__name__)

# A refusal the relay answered with a 5xx: the ledger keeps its reply, code first
# (digest.sending.pool.reply_outcome); "gave up after …" and "not sent: …" failures are not refusals.
_REFUSED = r"^5[0-9][0-9] "


def _share(value: float) -> str:
    """A rate as people read it: one decimal, two below 1% (complaint limits are 0.1%)."""
    return f"{value:.2%}" if value < 0.01 else f"{value:.1%}"


@dataclass(frozen=True)
class BreakerRates:
    """What a newsletter's digests sent since `since` met: the counts the breaker judges."""

    sent: int
    hard: int
    soft: int
    complaints: int

    def tripped(self) -> str:
        """Say which limit is passed, e.g. "hard bounces 6.1% of 412 sent" ("" if none, or too few were sent)."""
        if not self.sent or self.sent < digest_settings.BREAKER_MIN_SENT:
            return ""
        limits = (
            ("hard bounces", self.hard, digest_settings.BREAKER_HARD_RATE),
            ("temporary failures", self.soft, digest_settings.BREAKER_SOFT_RATE),
            ("complaints", self.complaints, digest_settings.BREAKER_COMPLAINT_RATE),
        )
        over = [
            f"{name} {_share(count / self.sent)} of {self.sent} sent"
            for name, count, limit in limits
            if limit and count / self.sent > limit
        ]
        return ", ".join(over)

    def __str__(self) -> str:
        if not self.sent:
            return "nothing sent in that time"
        return (
            f"{self.sent} sent: hard bounces {_share(self.hard / self.sent)}, temporary failures "
            f"{_share(self.soft / self.sent)}, complaints {_share(self.complaints / self.sent)}"
        )


def breaker_since(newsletter: Newsletter, *, now: datetime.datetime) -> datetime.datetime:
    """Where a newsletter's rates start: DIGEST_BREAKER_HOURS before `now` (the database's time), or its last resume."""
    since = now - datetime.timedelta(hours=digest_settings.BREAKER_HOURS)
    return max(since, newsletter.resumed_at) if newsletter.resumed_at else since


def breaker_rates(*, newsletter: Newsletter, now: datetime.datetime) -> BreakerRates:
    """Count a newsletter's digests attempted since breaker_since and what came back about them (three queries).

    `now` is the database's time (project.clock.db_now). A digest's last claim is when the
    relay accepted or refused it.
    """
    since = breaker_since(newsletter, now=now)
    recent = Delivery.objects.filter(newsletter=newsletter, claimed_at__gt=since)
    accepted = recent.filter(status=DeliveryStatus.SENT)
    refused = recent.filter(status=DeliveryStatus.FAILED, last_error__regex=_REFUSED).count()
    kinds = dict(
        BounceEvent.objects.filter(
            delivery__newsletter=newsletter, delivery__status=DeliveryStatus.SENT, delivery__claimed_at__gt=since
        )
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    return BreakerRates(
        sent=accepted.count() + refused,
        hard=refused + kinds.get(BounceKind.HARD, 0),
        soft=kinds.get(BounceKind.SOFT, 0),
        complaints=kinds.get(BounceKind.COMPLAINT, 0),
    )


def breaker_check(*, newsletter_ids: Iterable[int], now: datetime.datetime) -> list[str]:
    """Pause each of these newsletters whose rates pass a limit, mailing ADMINS; return what was paused and why.

    `now` is the database's time (project.clock.db_now), which the pause is stamped with.
    """
    paused = []
    for newsletter in Newsletter.objects.filter(id__in=list(newsletter_ids), paused_at__isnull=True):
        reason = breaker_rates(newsletter=newsletter, now=now).tripped()
        if reason and _pause(newsletter, reason=reason, now=now):
            paused.append(f"newsletter {newsletter.slug} paused ({reason})")
    return paused


def _pause(newsletter: Newsletter, *, reason: str, now: datetime.datetime) -> bool:
    """Pause a newsletter unless another process just did; the one that does mails ADMINS."""
    if not Newsletter.objects.filter(pk=newsletter.pk, paused_at__isnull=True).update(
        paused_at=now, pause_reason=reason[:300]
    ):
        return False
    logger.warning("Circuit breaker: sending of %s paused: %s", newsletter.slug, reason)
    body = (
        f"At {now:%Y-%m-%d %H:%M %Z} sending of the newsletter {newsletter.name} ({newsletter.slug}) was paused: "
        f"{reason}, among its digests sent in the last {digest_settings.BREAKER_HOURS} hours.\n\n"
        "Its planned digests wait; nothing is lost, and the other newsletters keep sending.\n"
        "Find out why first (an imported list? a changed sign-up form? see the bounce events in the admin),\n"
        f"then resume it with one click on the dashboard: {reverse('dashboard')}"
    )
    try:
        mail_admins(f"Digest: sending of {newsletter.name} paused", body)
    except (smtplib.SMTPException, OSError) as error:
        # The pause is what protects the sender; a report that cannot go out must not undo it.
        logger.error("Cannot mail the pause of %s to ADMINS: %s", newsletter.slug, error)
    return True


def newsletter_resume(*, newsletter_id: int, by: str, now: datetime.datetime) -> bool:
    """Let a paused newsletter send again, recorded with who did it; False if it was not paused.

    Its rates start again from `now` (the database's time), so the digests that waited are
    judged on their own.
    """
    resumed = Newsletter.objects.filter(pk=newsletter_id, paused_at__isnull=False).update(
        paused_at=None, pause_reason="", resumed_at=now, resumed_by=by[:150]
    )
    if resumed:
        logger.info("Sending of newsletter %s resumed by %s", newsletter_id, by)
    return bool(resumed)


@dataclass(frozen=True)
class Paused:
    """A paused newsletter, how many of its digests wait, and its rates now."""

    newsletter: Newsletter
    waiting: int
    rates: BreakerRates


def _paused(newsletter_ids: list[int] | None) -> list[tuple[Newsletter, int]]:
    newsletters = Newsletter.objects.filter(paused_at__isnull=False).order_by("name")
    if newsletter_ids is not None:
        newsletters = newsletters.filter(id__in=newsletter_ids)
    waiting = dict(
        Delivery.objects.filter(newsletter__in=newsletters, status__in=OPEN_STATUSES)
        .values_list("newsletter_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(newsletter, waiting.get(newsletter.pk, 0)) for newsletter in newsletters]


def breaker_paused(*, now: datetime.datetime, newsletter_ids: list[int] | None = None) -> list[Paused]:
    """Every paused newsletter (of `newsletter_ids`, if given), with its waiting digests and its rates at `now`."""
    return [
        Paused(newsletter=newsletter, waiting=waiting, rates=breaker_rates(newsletter=newsletter, now=now))
        for newsletter, waiting in _paused(newsletter_ids)
    ]


def breaker_summary(*, newsletter_ids: list[int] | None) -> tuple[int, str]:
    """How many digests paused newsletters hold, and why each is paused, for a run's summary line."""
    paused = _paused(newsletter_ids)
    reasons = [f"newsletter {newsletter.slug} paused ({newsletter.pause_reason})" for newsletter, _ in paused]
    return sum(waiting for _, waiting in paused), "; ".join(reasons)
