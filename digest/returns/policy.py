"""The bounce and complaint policy, in one place: what a returned message or ESP event does.

- A hard bounce (5.x.x: no such user, domain gone) suppresses the address at once.
- A soft bounce (4.x.x: mailbox full, greylisted too long) adds to a score, Mailman's model:
  the score is the number of different days with a soft bounce within the last
  DIGEST_BOUNCE_DECAY_DAYS (older ones have decayed); at DIGEST_BOUNCE_SOFT_THRESHOLD the
  address is suppressed.
- A complaint (an ARF report, an ESP's `complained`) or an ESP's `unsubscribed` event
  unsubscribes the reader from everything; the event records why.
- An editor may lift a suppression (admin): recorded too, and the soft score restarts.
- A bounce or complaint about a digest counts towards its newsletter's circuit breaker
  (digest.breaker), which pauses its sending past the limits.

Every event is stored (digest.models.BounceEvent) once: its fingerprint is unique, so a
report read again changes nothing. Its raw message is kept cut to DIGEST_BOUNCE_RAW_MAX_BYTES,
and not at all once the last 24 hours' events hold DIGEST_BOUNCE_RAW_DAY_BYTES. Text from
outside reaches a query only through `db_text` (PostgreSQL refuses NUL characters and
unpaired surrogates). Messages are read by digest.returns.returned, ESP events arrive through
digest.returns.webhooks; both end here.
"""

import datetime
import hashlib
import logging
import smtplib
import uuid
from dataclasses import dataclass

from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.db.models.functions import TruncDate

from digest.breaker import breaker_check
from digest.conf import digest_settings
from digest.models import AdminAlert, BounceAction, BounceEvent, BounceKind, Delivery, DeliveryStatus
from newsletters.models import Subscriber, SubscriberStatus, SubscriptionStatus
from newsletters.services import subscriber_unsubscribe_all
from project.clock import db_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    """One bounce, complaint or ESP event about one subscriber, before the policy acts on it."""

    kind: BounceKind
    source: str
    occurred_at: datetime.datetime
    fingerprint: str
    status: str = ""
    diagnostic: str = ""
    raw: str = ""


def db_text(text: str, limit: int | None = None) -> str:
    """Return text any database stores as it is: no NUL, no unpaired surrogate, at most `limit` characters."""
    text = text[: limit * 2] if limit is not None else text  # cheap before the copies; a surrogate pair is 2
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text[:limit] if limit is not None else text


def fingerprint_of(*parts: object) -> str:
    """Return the identity of a report, from what names it uniquely (hex SHA-256)."""
    return hashlib.sha256("\x00".join(str(part) for part in parts).encode("utf-8", "replace")).hexdigest()


def bounce_record(
    *, report: Report, subscriber: Subscriber, delivery: Delivery | None = None, now: datetime.datetime
) -> BounceEvent | None:
    """Apply the policy to one report and store it; return None if it was recorded before."""
    occurred_at = min(report.occurred_at, now)
    with transaction.atomic():
        # One writer per subscriber at a time: the score and the status move together.
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if BounceEvent.objects.filter(fingerprint=report.fingerprint).exists():
            return None
        score = 0
        if report.kind == BounceKind.HARD:
            action = _suppress(subscriber)
        elif report.kind == BounceKind.SOFT:
            score = soft_score(subscriber=subscriber, now=occurred_at, extra_day=occurred_at.date())
            if score >= digest_settings.BOUNCE_SOFT_THRESHOLD:
                action = _suppress(subscriber)
            else:
                action = BounceAction.COUNTED
        elif report.kind in (BounceKind.COMPLAINT, BounceKind.UNSUBSCRIBED):
            action = _unsubscribe(subscriber, now=now)
        else:
            raise ValueError(f"a report cannot be of kind {report.kind!r}")
        try:
            with transaction.atomic():
                event = BounceEvent.objects.create(
                    subscriber=subscriber,
                    delivery=delivery,
                    kind=report.kind,
                    action=action,
                    source=db_text(report.source, 40),
                    occurred_at=occurred_at,
                    status=db_text(report.status, 16),
                    diagnostic=db_text(report.diagnostic, 2000),
                    score=score,
                    fingerprint=db_text(report.fingerprint, 64),
                    raw=_raw_kept(report.raw, now=now),
                )
        except IntegrityError:  # recorded by another process in the meantime
            transaction.set_rollback(True)
            return None
    logger.info("%s for %s (%s): %s", event.get_kind_display(), subscriber.email, report.source, action)
    if delivery is not None and report.kind in (BounceKind.HARD, BounceKind.SOFT, BounceKind.COMPLAINT):
        breaker_check(newsletter_ids=[delivery.newsletter_id], now=db_now())
    return event


def _raw_kept(raw: str, *, now: datetime.datetime) -> str:
    """Return what is kept of a raw report: cut to DIGEST_BOUNCE_RAW_MAX_BYTES, "" past the day's cap."""
    limit = digest_settings.BOUNCE_RAW_MAX_BYTES
    if not raw or not digest_settings.BOUNCE_KEEP_RAW_DAYS or not limit:
        return ""
    kept_today = BounceEvent.objects.filter(occurred_at__gt=now - datetime.timedelta(days=1)).exclude(raw="").count()
    if (kept_today + 1) * limit > digest_settings.BOUNCE_RAW_DAY_BYTES:
        return ""
    cut = raw[:limit].encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")
    return db_text(cut)


def soft_score(*, subscriber: Subscriber, now: datetime.datetime, extra_day: datetime.date | None = None) -> int:
    """Return a subscriber's soft-bounce score at `now`: days with a soft bounce not yet decayed.

    Days before the last lifted suppression do not count.
    """
    since = now - datetime.timedelta(days=digest_settings.BOUNCE_DECAY_DAYS)
    lifted = (
        BounceEvent.objects.filter(subscriber=subscriber, kind=BounceKind.LIFTED)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    if lifted and lifted > since:
        since = lifted
    days = set(
        BounceEvent.objects.filter(subscriber=subscriber, kind=BounceKind.SOFT, occurred_at__gt=since)
        .annotate(day=TruncDate("occurred_at"))
        .values_list("day", flat=True)
        .distinct()
    )
    if extra_day is not None:
        days.add(extra_day)
    return len(days)


def _suppress(subscriber: Subscriber) -> BounceAction:
    if subscriber.status == SubscriberStatus.SUPPRESSED:
        return BounceAction.NONE
    Subscriber.objects.filter(pk=subscriber.pk).update(status=SubscriberStatus.SUPPRESSED)
    return BounceAction.SUPPRESSED


def _unsubscribe(subscriber: Subscriber, *, now: datetime.datetime) -> BounceAction:
    stopped = subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED) and not (
        subscriber.subscriptions.exclude(status=SubscriptionStatus.UNSUBSCRIBED).exists()
    )
    subscriber_unsubscribe_all(subscriber=subscriber, now=now)
    return BounceAction.NONE if stopped else BounceAction.UNSUBSCRIBED


def suppression_lift(*, subscriber: Subscriber, by: str, now: datetime.datetime) -> bool:
    """Let mail go to a suppressed subscriber again, recorded with who did it; False if not suppressed.

    Their active subscriptions start from now, not with everything since the bounces, and
    the soft score starts again from zero.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status != SubscriberStatus.SUPPRESSED:
            return False
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.consecutive_failures = 0
        subscriber.save(update_fields=["status", "consecutive_failures"])
        subscriber.subscriptions.filter(status=SubscriptionStatus.ACTIVE).update(cursor=now, next_due_at=None)
        BounceEvent.objects.create(
            subscriber=subscriber,
            kind=BounceKind.LIFTED,
            action=BounceAction.LIFTED,
            source="admin",
            occurred_at=now,
            diagnostic=f"lifted by {by}",
            fingerprint=fingerprint_of("lifted", subscriber.pk, uuid.uuid4()),
        )
    logger.info("Suppression of %s lifted by %s", subscriber.email, by)
    return True


def bounce_raw_prune(*, now: datetime.datetime) -> int:
    """Forget returned messages older than DIGEST_BOUNCE_KEEP_RAW_DAYS (the events stay); return how many."""
    before = now - datetime.timedelta(days=digest_settings.BOUNCE_KEEP_RAW_DAYS)
    return BounceEvent.objects.filter(occurred_at__lt=before).exclude(raw="").update(raw="")


@dataclass(frozen=True)
class Rates:
    """Hard bounces and complaints against digests sent over the last DIGEST_BOUNCE_RATE_DAYS."""

    sent: int
    hard: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.hard / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0

    def exceeded(self) -> list[str]:
        """The thresholds passed: "bounce", "complaint", both or none."""
        if not self.sent:
            return []
        kinds = []
        if self.bounce_rate > digest_settings.BOUNCE_RATE_WARN:
            kinds.append("bounce")
        if self.complaint_rate > digest_settings.COMPLAINT_RATE_WARN:
            kinds.append("complaint")
        return kinds

    def warning(self) -> str:
        """Say which ESP threshold is passed ("" when none)."""
        days = digest_settings.BOUNCE_RATE_DAYS
        over = []
        if "bounce" in self.exceeded():
            over.append(
                f"bounce rate {self.bounce_rate:.2%} ({self.hard} hard bounces / {self.sent} sent in {days} days) "
                f"is above {digest_settings.BOUNCE_RATE_WARN:.2%}"
            )
        if "complaint" in self.exceeded():
            over.append(
                f"complaint rate {self.complaint_rate:.2%} ({self.complaints} complaints / {self.sent} sent in "
                f"{days} days) is above {digest_settings.COMPLAINT_RATE_WARN:.2%}"
            )
        return "; ".join(over)


def bounce_rates(*, now: datetime.datetime) -> Rates:
    """Return hard bounces and complaints against digests sent in the last DIGEST_BOUNCE_RATE_DAYS."""
    since = now - datetime.timedelta(days=digest_settings.BOUNCE_RATE_DAYS)
    events = BounceEvent.objects.filter(occurred_at__gt=since)
    return Rates(
        sent=Delivery.objects.filter(status=DeliveryStatus.SENT, sent_at__gt=since).count(),
        hard=events.filter(kind=BounceKind.HARD).count(),
        complaints=events.filter(kind=BounceKind.COMPLAINT).count(),
    )


# Runs come every few minutes: while a rate stays high, ADMINS hear about it once a day, not
# after every run; a threshold newly passed is news at once.
RATES_ALERT = "bounce_rates"
RATES_MAIL_EVERY = datetime.timedelta(hours=24)


def rates_warn(*, now: datetime.datetime) -> str:
    """Log a warning when the bounce or complaint rate passes the ESP thresholds, mail ADMINS about it; return it.

    The log line comes every time. The mail goes at most once per RATES_MAIL_EVERY while the
    same thresholds stay passed, and at once when one is passed that the last mail did not
    name (bounce → complaint, or again after the rate was back under). When it was mailed is
    kept in the database (AdminAlert), so every sender machine sees it.
    """
    rates = bounce_rates(now=now)
    kinds = rates.exceeded()
    if not kinds:
        # Back under: the next crossing is news again.
        AdminAlert.objects.filter(key=RATES_ALERT).exclude(kinds="").update(kinds="")
        return ""
    warning = rates.warning()
    logger.warning("Deliverability: %s", warning)
    with transaction.atomic():
        # The row is locked while this run decides, so two machines finishing runs together
        # mail once; it is marked mailed before the mail goes, so no lock waits on SMTP.
        alert, _ = AdminAlert.objects.select_for_update().get_or_create(key=RATES_ALERT)
        mailed = set(filter(None, alert.kinds.split(",")))
        if set(kinds) <= mailed and alert.mailed_at and now - alert.mailed_at < RATES_MAIL_EVERY:
            if mailed != set(kinds):  # one has cleared: remember, so its return is news
                alert.kinds = ",".join(kinds)
                alert.save(update_fields=["kinds"])
            return warning
        before = {"kinds": alert.kinds, "mailed_at": alert.mailed_at}
        alert.kinds, alert.mailed_at = ",".join(kinds), now
        alert.save(update_fields=["kinds", "mailed_at"])
    body = (
        f"At {now:%Y-%m-%d %H:%M %Z}: {warning}.\n\n"
        "ESPs review or suspend accounts past these rates (Amazon SES: 5% bounces, 0.1% complaints).\n"
        "See the bounce events in the admin; check imported lists and how readers subscribed.\n\n"
        "While this lasts you get this mail once a day, and at once if another rate passes its threshold."
    )
    try:
        mail_admins("Digest: bounce or complaint rate too high", body)
    except (smtplib.SMTPException, OSError) as error:
        logger.error("Cannot mail the deliverability warning to ADMINS: %s", error)
        # Not mailed after all: the next run tries again (unless another run has mailed since).
        AdminAlert.objects.filter(pk=alert.pk, mailed_at=now).update(**before)
    return warning
