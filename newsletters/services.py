"""Writes on issues and subscribers: publishing and the reader flows. Views and admin actions call these.

Reading issues from Markdown files and subscribers from CSV is newsletters.importing.
"""

import datetime
import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from newsletters.conf import newsletters_settings
from newsletters.exceptions import ConfirmationReplayed, RateLimited
from newsletters.languages import validate_shipped_language
from newsletters.letters import confirm_render
from newsletters.messages import ReaderEmail
from newsletters.models import (
    Frequency,
    Issue,
    IssueStatus,
    Newsletter,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletters.signals import subscriber_confirmed, subscription_changed, subscriptions_unsubscribed
from newsletters.tokens import TokenInvalid, confirm_url, token_read
from newsletters.validators import email_normalize

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- issues


def issue_publish(*, issue: Issue, now: datetime.datetime, publish_at: datetime.datetime | None = None) -> Issue:
    """Publish an issue now, or schedule it for `publish_at`."""
    issue.status = IssueStatus.PUBLISHED
    issue.publish_at = publish_at or now
    issue.save(update_fields=["status", "publish_at", "updated_at"])
    return issue


# -------------------------------------------------------------------- reader flows


def rate_hit(key: str, *, limit: int, period: int) -> bool:
    """Count one event under `key`; return True while within `limit` per `period` seconds."""
    cache.add(key, 0, timeout=period)
    try:
        return cache.incr(key) <= limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=period)
        return True


def subscription_request(
    *,
    email: str,
    name: str,
    tz: str,
    choices: dict[int, str],
    client: str,
    now: datetime.datetime,
    language: str = "",
) -> bool:
    """Mail a confirmation link for a subscription request; return whether a mail was sent.

    Nothing is stored until the link is followed: the request travels inside the signed
    token, so the form cannot change an existing reader's settings, and the answer is the
    same whether or not the address is known. The mail is in `language` (the reader's, from
    their browser), else the first chosen newsletter's. Raises RateLimited when one client asks too
    often; silently sends nothing when one address was asked for too often.
    """
    if not rate_hit(
        f"subscribe:client:{client}",
        limit=newsletters_settings.RATE_PER_CLIENT,
        period=newsletters_settings.RATE_PERIOD,
    ):
        raise RateLimited(gettext("Too many subscription requests from this client; try again later."))
    address_key = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    if not rate_hit(
        f"subscribe:address:{address_key}",
        limit=newsletters_settings.RATE_PER_ADDRESS,
        period=newsletters_settings.RATE_PERIOD,
    ):
        return False
    payload = {
        "e": email,
        "n": name,
        "tz": tz,
        "c": {str(k): v for k, v in choices.items()},
        "iat": int(now.timestamp()),
    }
    if language:
        payload["l"] = language
    newsletters = list(Newsletter.objects.filter(pk__in=choices).order_by("name"))
    letter = confirm_render(
        name=name,
        newsletters=[(n, Frequency(choices[n.pk]).label) for n in newsletters],
        confirm_url=confirm_url(payload),
        max_age_days=newsletters_settings.CONFIRM_MAX_AGE_DAYS,
        language=language,
    )
    message = ReaderEmail(
        subject=letter.subject,
        body=letter.text,
        to=[email],
        # RFC 3834: a machine's answer to a request; auto-responders do not answer it.
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(letter.html, "text/html")
    return message.send() == 1


def subscription_confirm(*, token: str, now: datetime.datetime) -> Subscriber:
    """Apply a confirmed subscription request: activate the reader and the chosen subscriptions.

    Raises TokenInvalid, TokenExpired, or ConfirmationReplayed for a link already used.
    """
    payload = token_read(
        token, purpose="confirm", kind=dict, max_age=datetime.timedelta(days=newsletters_settings.CONFIRM_MAX_AGE_DAYS)
    )
    try:
        email, name, tz, choices, issued = payload["e"], payload["n"], payload["tz"], payload["c"], payload["iat"]
        choices = {int(pk): Frequency(frequency) for pk, frequency in choices.items()}
        email = email_normalize(email)  # tokens made before addresses were normalised
    except (KeyError, ValueError, TypeError, AttributeError, ValidationError):
        raise TokenInvalid("confirm") from None
    confirmed = []
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(email__iexact=email).first()
        if _confirmation_applied(subscriber, issued=issued):
            raise ConfirmationReplayed("This confirmation link was already used.")
        subscriber = subscriber or Subscriber(email=email)
        # Mail to a suppressed address stopped; its subscriptions stayed active with their old
        # cursors. Coming back, they start from now, not with everything since the bounces.
        returning = subscriber.status == SubscriberStatus.SUPPRESSED
        subscriber.name, subscriber.timezone = name, tz
        if payload.get("l") in dict(settings.LANGUAGES):
            subscriber.language = payload["l"]
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.confirmed_at = now
        subscriber.consecutive_failures = 0
        subscriber.last_link_at = now  # a signed link used: not dormant (re-confirmation)
        subscriber.save()
        if returning:
            subscriber.subscriptions.filter(status=SubscriptionStatus.ACTIVE).update(cursor=now, next_due_at=None)
        for newsletter in Newsletter.objects.filter(pk__in=choices, active=True):
            subscription, created = Subscription.objects.get_or_create(
                subscriber=subscriber, newsletter=newsletter, defaults={"frequency": choices[newsletter.pk]}
            )
            if not created and subscription.status in (SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.PAUSED):
                subscription.cursor = now  # coming back: start from now, not from when they left
            elif not created and subscription.status == SubscriptionStatus.PENDING:
                # Pending since an import: it begins now, so its first digest reaches back from
                # now (one period), not to the import.
                subscription.created_at = now
            if created or subscription.status != SubscriptionStatus.ACTIVE:
                subscription.joined_at = now  # its onboarding sequence counts from here (digest.planning.letters)
            subscription.frequency = choices[newsletter.pk]
            subscription.status = SubscriptionStatus.ACTIVE
            subscription.next_due_at = None  # the next run schedules it from its cursor
            subscription.save()
            confirmed.append(subscription)
        subscriber_confirmed.send(sender=Subscriber, subscriber=subscriber, subscriptions=confirmed, now=now)
    return subscriber


def confirmation_used(*, payload: dict) -> bool:
    """Whether a confirmation request was already applied: its address confirmed at or after it was issued."""
    email, issued = payload.get("e"), payload.get("iat")
    if not isinstance(email, str) or not isinstance(issued, int):
        raise TokenInvalid("confirm")
    try:
        email = email_normalize(email)
    except ValidationError:
        raise TokenInvalid("confirm") from None
    return _confirmation_applied(Subscriber.objects.filter(email__iexact=email).first(), issued=issued)


def _confirmation_applied(subscriber: Subscriber | None, *, issued: int) -> bool:
    return bool(subscriber and subscriber.confirmed_at and subscriber.confirmed_at.timestamp() >= issued)


def link_used(*, subscriber_id: int, now: datetime.datetime, last: datetime.datetime | None = None) -> None:
    """Note that a reader used a signed link: they read us, so re-confirmation leaves them be for a while.

    With `last` (the stamp already read), a use within the hour writes nothing: a page
    opened again costs no UPDATE, and months of quiet are not a matter of minutes.
    """
    if last is not None and now - last < datetime.timedelta(hours=1):
        return
    Subscriber.objects.filter(pk=subscriber_id).update(last_link_at=now)


def subscription_keep(*, subscription_id: int, now: datetime.datetime) -> bool:
    """Answer "still want this?" with yes: the reader counts as reading; a subscription paused for silence resumes.

    Only a subscription paused by re-confirmation resumes (from now, not with everything
    since); one the reader paused or left stays as it is. False if there is no such subscription.
    """
    subscription = Subscription.objects.select_related("subscriber").filter(pk=subscription_id).first()
    if subscription is None:
        return False
    with transaction.atomic():
        link_used(subscriber_id=subscription.subscriber_id, now=now)
        Subscription.objects.filter(pk=subscription_id, status=SubscriptionStatus.PAUSED, paused_quiet=True).update(
            status=SubscriptionStatus.ACTIVE, paused_quiet=False, cursor=now, next_due_at=None, updated_at=now
        )
    return True


def subscription_unsubscribe(*, subscription_id: int, now: datetime.datetime) -> bool:
    """Stop a subscription at once; no message not yet handed to SMTP will be sent. Idempotent.

    One UPDATE when it was subscribed (what one-click POSTs cost); False if there is no such subscription.
    """
    with transaction.atomic():
        changed = (
            Subscription.objects.filter(pk=subscription_id)
            .exclude(status=SubscriptionStatus.UNSUBSCRIBED)
            .update(status=SubscriptionStatus.UNSUBSCRIBED, next_due_at=None, updated_at=now, unsubscribed_at=now)
        )
        if changed:
            subscriptions_unsubscribed.send(sender=Subscription, subscription_ids=[subscription_id], now=now)
    return bool(changed) or Subscription.objects.filter(pk=subscription_id).exists()


def subscription_set_frequency(*, subscription: Subscription, frequency: str, now: datetime.datetime) -> None:
    """Change how often a subscription sends; the cursor stays, so no issue repeats or drops."""
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(
            frequency=Frequency(frequency), next_due_at=None, updated_at=now
        )
        if subscription.frequency != frequency:
            subscription.frequency = Frequency(frequency)
            subscription_changed.send(sender=Subscription, subscription=subscription, now=now)


@dataclass(frozen=True)
class PreferenceChange:
    subscription_id: int
    frequency: str
    status: str


def preferences_update(
    *,
    subscriber: Subscriber,
    name: str,
    tz: str,
    changes: list[PreferenceChange],
    now: datetime.datetime,
    language: str | None = None,
) -> None:
    """Apply a reader's preferences: name, time zone, language, and each subscription's frequency and status.

    Turning a newsletter back on after "unsubscribe from everything" makes the reader active
    again: the signed link proves the address is theirs. A suppressed reader (mail to the
    address bounced) is not: only a new confirmation shows that the address works again.
    """
    with transaction.atomic():
        moved = tz != subscriber.timezone
        subscriber.name, subscriber.timezone = name, tz
        if language is not None:
            validate_shipped_language(language)
            subscriber.language = language
        if subscriber.status == SubscriberStatus.UNSUBSCRIBED and any(
            change.status == SubscriptionStatus.ACTIVE for change in changes
        ):
            subscriber.status = SubscriberStatus.ACTIVE
        subscriber.save(update_fields=["name", "timezone", "language", "status"])
        subscriptions = {s.pk: s for s in subscriber.subscriptions.select_for_update()}
        for change in changes:
            subscription = subscriptions[change.subscription_id]
            reschedule = moved or subscription.frequency != change.frequency
            before = (subscription.frequency, subscription.status)
            if subscription.status != change.status:
                if change.status == SubscriptionStatus.ACTIVE:
                    subscription.cursor = now  # resuming after a pause or unsubscribe: from now on
                elif change.status == SubscriptionStatus.UNSUBSCRIBED:
                    subscription.unsubscribed_at = now
                reschedule = True
            subscription.frequency = change.frequency
            subscription.status = change.status
            if reschedule:
                subscription.next_due_at = None
            subscription.save()
            if change.status == SubscriptionStatus.UNSUBSCRIBED != before[1]:
                subscriptions_unsubscribed.send(sender=Subscription, subscription_ids=[subscription.pk], now=now)
            elif (change.frequency, change.status) != before:
                subscription_changed.send(sender=Subscription, subscription=subscription, now=now)


def subscriber_unsubscribe_all(*, subscriber: Subscriber, now: datetime.datetime) -> list[int]:
    """Unsubscribe a reader from everything; return the ids of the subscriptions it stopped.

    A suppressed reader stays suppressed: turning a newsletter back on must not get around
    the bounces (only a new confirmation does)."""
    with transaction.atomic():
        stopping = list(
            subscriber.subscriptions.select_for_update()
            .exclude(status=SubscriptionStatus.UNSUBSCRIBED)
            .values_list("pk", flat=True)
        )
        Subscription.objects.filter(pk__in=stopping).update(
            status=SubscriptionStatus.UNSUBSCRIBED, next_due_at=None, unsubscribed_at=now
        )
        if stopping:
            subscriptions_unsubscribed.send(sender=Subscription, subscription_ids=stopping, now=now)
        Subscriber.objects.filter(pk=subscriber.pk).exclude(status=SubscriberStatus.SUPPRESSED).update(
            status=SubscriberStatus.UNSUBSCRIBED
        )
    return stopping


def subscriptions_undo_unsubscribe(
    *, subscriber: Subscriber, subscription_ids: list[int], now: datetime.datetime
) -> int:
    """Turn back on the subscriptions a reader unsubscribed from; return how many.

    From now on, like resuming in the preferences (no digest of what was published meanwhile).
    A suppressed reader stays suppressed: only a new confirmation shows the address works again.
    """
    if subscriber.status == SubscriberStatus.SUPPRESSED:
        return 0
    with transaction.atomic():
        resumed = subscriber.subscriptions.filter(
            pk__in=subscription_ids, status=SubscriptionStatus.UNSUBSCRIBED, newsletter__active=True
        ).update(status=SubscriptionStatus.ACTIVE, cursor=now, next_due_at=None, updated_at=now)
        if resumed:
            Subscriber.objects.filter(pk=subscriber.pk, status=SubscriberStatus.UNSUBSCRIBED).update(
                status=SubscriberStatus.ACTIVE
            )
    return resumed


def subscription_join(*, subscriber: Subscriber, newsletter: Newsletter, now: datetime.datetime) -> bool:
    """Subscribe a reader, known by a signed link, to one more newsletter, weekly; return whether it changed.

    The signed link proves the address, so no confirmation mail: the same rule as turning a
    newsletter back on in the preferences. A suppressed reader is refused.
    """
    if subscriber.status == SubscriberStatus.SUPPRESSED or not newsletter.active:
        return False
    with transaction.atomic():
        subscription, created = Subscription.objects.select_for_update().get_or_create(
            subscriber=subscriber,
            newsletter=newsletter,
            defaults={"frequency": Frequency.WEEKLY, "status": SubscriptionStatus.ACTIVE},
        )
        if not created:
            if subscription.status == SubscriptionStatus.ACTIVE:
                return False
            subscription.status, subscription.cursor, subscription.next_due_at = SubscriptionStatus.ACTIVE, now, None
            subscription.save()
        Subscriber.objects.filter(pk=subscriber.pk, status=SubscriberStatus.UNSUBSCRIBED).update(
            status=SubscriberStatus.ACTIVE
        )
    return True
