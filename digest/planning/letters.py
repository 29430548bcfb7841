"""Which one-off letters are due: onboarding steps after joining, "still want this?" after a quiet spell.

Each run plans them into the letters' ledger (digest.models.Letter) before sending; the
ledger's unique (subscription, kind, step) makes planning twice harmless.

Onboarding: step S of a newsletter is due for a reader at joined_at + S.delay, planned once
that moment has come, if it came after the step existed (a step added today never mails
readers who joined last year) and no more than DIGEST_ONBOARDING_LATE_DAYS ago. Only active
readers of active subscriptions: unsubscribing, pausing or a suppression stops the sequence;
one coming back starts it again (`onboarding_restart`).

Re-confirmation (DIGEST_RECONFIRM_MONTHS, 0: off), without tracking: a reader whose last
signed link (Subscriber.last_link_at: confirming, preferences, keep-me) is older than that is
asked once per quiet spell (the letter's step is that spell's start, as a timestamp). Using
any signed link answers it; a reader who has not answered DIGEST_RECONFIRM_DAYS after it
went out has that subscription paused (Subscription.paused_quiet), until they resume it.
"""

import datetime

from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Coalesce

from digest.conf import digest_settings
from digest.models import DeliveryStatus, Letter, LetterKind
from newsletters.models import OnboardingStep, SubscriberStatus, Subscription, SubscriptionStatus

CHUNK = 1000
MONTH = datetime.timedelta(days=30)


def _readers(newsletter_ids: list[int] | None):
    readers = Subscription.objects.filter(
        status=SubscriptionStatus.ACTIVE, subscriber__status=SubscriberStatus.ACTIVE, newsletter__active=True
    )
    return readers if newsletter_ids is None else readers.filter(newsletter_id__in=newsletter_ids)


def onboarding_plan(*, now: datetime.datetime, newsletter_ids: list[int] | None = None) -> int:
    """Plan every onboarding step whose time has come; return how many letters were planned."""
    late = datetime.timedelta(days=digest_settings.ONBOARDING_LATE_DAYS)
    steps = OnboardingStep.objects.filter(newsletter__active=True)
    if newsletter_ids is not None:
        steps = steps.filter(newsletter_id__in=newsletter_ids)
    planned = 0
    for step in steps:
        delay = step.delay
        letters = Letter.objects.filter(subscription=OuterRef("pk"), kind=LetterKind.ONBOARDING, step=step.pk)
        due = (
            _readers(newsletter_ids)
            .filter(
                newsletter_id=step.newsletter_id,
                joined_at__lte=now - delay,
                joined_at__gte=max(step.created_at, now - late) - delay,
            )
            .exclude(Exists(letters))
            .values_list("pk", "joined_at")
        )
        rows = [
            Letter(kind=LetterKind.ONBOARDING, subscription_id=pk, step=step.pk, due_at=joined + delay)
            for pk, joined in due.iterator(chunk_size=CHUNK)
        ]
        planned += len(Letter.objects.bulk_create(rows, batch_size=CHUNK, ignore_conflicts=True))
    return planned


def onboarding_restart(*, subscriptions: list[Subscription], now: datetime.datetime) -> int:
    """Forget the onboarding letters of readers who joined again at `now`, so their sequence starts over.

    Letters in flight stay (their sender records them). Returns how many were forgotten.
    """
    ids = [subscription.pk for subscription in subscriptions if subscription.joined_at == now]
    if not ids:
        return 0
    forgotten = Letter.objects.filter(subscription_id__in=ids, kind=LetterKind.ONBOARDING)
    return forgotten.exclude(status=DeliveryStatus.SENDING).delete()[0]


def reconfirm_plan(*, now: datetime.datetime, newsletter_ids: list[int] | None = None) -> int:
    """Ask readers quiet for DIGEST_RECONFIRM_MONTHS whether they still want each newsletter; return how many."""
    if not digest_settings.RECONFIRM_MONTHS:
        return 0
    quiet = digest_settings.RECONFIRM_MONTHS * MONTH
    since = Coalesce("subscriber__last_link_at", "subscriber__confirmed_at", "subscriber__created_at")
    # Asked in this quiet spell already (answered or not): a letter due since it began.
    asked = Letter.objects.filter(subscription=OuterRef("pk"), kind=LetterKind.RECONFIRM, due_at__gte=OuterRef("since"))
    readers = _readers(newsletter_ids).annotate(since=since).filter(since__lt=now - quiet).exclude(Exists(asked))
    rows = [
        Letter(kind=LetterKind.RECONFIRM, subscription_id=pk, step=int(spell.timestamp()), due_at=now)
        for pk, spell in readers.values_list("pk", "since").iterator(chunk_size=CHUNK)
    ]
    return len(Letter.objects.bulk_create(rows, batch_size=CHUNK, ignore_conflicts=True))


def reconfirm_pause(*, now: datetime.datetime) -> int:
    """Pause the subscriptions whose "still want this?" went out DIGEST_RECONFIRM_DAYS ago unanswered; return how many."""
    if not digest_settings.RECONFIRM_MONTHS:
        return 0
    unanswered = Letter.objects.filter(
        subscription=OuterRef("pk"),
        kind=LetterKind.RECONFIRM,
        status=DeliveryStatus.SENT,
        sent_at__lte=now - datetime.timedelta(days=digest_settings.RECONFIRM_DAYS),
        sent_at__gt=Coalesce(F("subscription__subscriber__last_link_at"), F("subscription__subscriber__created_at")),
    )
    return (
        Subscription.objects.filter(status=SubscriptionStatus.ACTIVE)
        .filter(Exists(unanswered))
        .update(status=SubscriptionStatus.PAUSED, paused_quiet=True, next_due_at=None, updated_at=now)
    )
