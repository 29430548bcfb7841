"""Subscribers and subscriptions: read with `read`; created, changed and deleted with `subscribers`.

Creating goes through the reader's own rules: the subscribe form's checks, then either the
double opt-in mail (nothing stored until the link is followed, the same answer whether or
not the address is known) or, with consent recorded in the caller's app, the rules of
`import_subscribers --confirmed` (an address that opted out is never re-subscribed).
"""

import ipaddress
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Status

from api.auth import READ, SUBSCRIBERS
from api.exceptions import Conflict, Invalid, TooManyRequests
from api.pagination import PAGE_SIZE, PAGE_SIZE_MAX, Page, filtered, paginate
from api.problems import answers
from api.schemas import (
    Accepted,
    Id,
    Moment,
    SubscriberIn,
    SubscriberOut,
    SubscriberPatch,
    SubscriptionOut,
    SubscriptionPatch,
)
from api.services import consent_record, invalid_from
from newsletters.conf import newsletters_settings
from newsletters.exceptions import RateLimited
from newsletters.forms import SubscribeForm
from newsletters.languages import validate_shipped_language
from newsletters.models import Frequency, Subscriber, Subscription, SubscriptionStatus
from newsletters.selectors import newsletters_public
from newsletters.services import (
    PreferenceChange,
    preferences_update,
    subscription_request,
    subscription_unsubscribe,
)
from newsletters.subscribers_csv import subscriber_enrol
from newsletters.validators import validate_single_line, validate_timezone

router = Router(tags=["subscribers"])

CONFIRMATION_SENT = (
    "If the address can receive mail, a confirmation link is on its way; nothing is stored until it is followed."
)


SUBSCRIBER_FIELDS = ("id", "email", "name", "timezone", "language", "status", "confirmed_at", "created_at")
SUBSCRIPTION_FIELDS = ("id", "subscriber_id", "newsletter_id", "frequency", "status", "created_at", "unsubscribed_at")


def _with_subscriptions(rows: list[dict]) -> list[dict]:
    """Give each subscriber row its subscriptions: one query for a whole page, plain dicts (no models to build)."""
    by_id = {row["id"]: row | {"subscriptions": []} for row in rows}
    subscriptions = Subscription.objects.filter(subscriber_id__in=by_id).order_by("id")
    for subscription in subscriptions.values(*SUBSCRIPTION_FIELDS):
        by_id[subscription["subscriber_id"]]["subscriptions"].append(subscription)
    return list(by_id.values())


def _subscriber(pk: int) -> dict:
    """One subscriber as the API answers it; 404 if there is none."""
    rows = _with_subscriptions(list(Subscriber.objects.filter(pk=pk).values(*SUBSCRIBER_FIELDS)))
    if not rows:
        raise Http404
    return rows[0]


def _form_errors(form) -> Invalid:
    errors = []
    for field, messages in form.errors.items():
        if field.startswith(("nl_", "freq_")):
            field = "subscriptions"
        errors += [{"field": "" if field == "__all__" else field, "message": message} for message in messages]
    return Invalid("; ".join(e["message"] for e in errors), errors=errors)


@router.get("/subscribers", response=answers(200, Page[SubscriberOut]), auth=READ, summary="List subscribers")
def subscriber_list(
    request,
    status: Literal["pending", "active", "unsubscribed", "suppressed"] | None = None,
    email: str | None = None,
    created_after: Moment | None = None,
    created_before: Moment | None = None,
    cursor: str | None = None,
    limit: int = Query(PAGE_SIZE, ge=1, le=PAGE_SIZE_MAX),
):
    """Subscribers in id order with their subscriptions; `email` matches one address, in any case."""
    queryset = filtered(
        Subscriber.objects.all(),
        status=status,
        email__iexact=email.strip() if email is not None else None,
        created_at__gte=created_after,
        created_at__lt=created_before,
    )
    page = paginate(queryset, cursor=cursor, limit=limit, values=SUBSCRIBER_FIELDS)
    return page | {"items": _with_subscriptions(page["items"])}


@router.post(
    "/subscribers",
    response={**answers(201, SubscriberOut), 202: Accepted},
    auth=SUBSCRIBERS,
    summary="Subscribe a reader",
)
def subscriber_create(request, payload: SubscriberIn):
    """Subscribe a reader to newsletters, by double opt-in (202) or with consent you recorded (201)."""
    newsletters = list(newsletters_public())
    data = {"email": payload.email, "name": payload.name, "timezone": payload.timezone}
    # The page posts every newsletter's frequency menu, followed or not.
    data |= {f"freq_{newsletter.pk}": Frequency.WEEKLY for newsletter in newsletters}
    for choice in payload.subscriptions:
        data[f"nl_{choice.newsletter}"], data[f"freq_{choice.newsletter}"] = "on", choice.frequency
    form = SubscribeForm(data, newsletters=newsletters)
    if not form.is_valid():
        raise _form_errors(form)
    _language_check(payload.language)
    request_kwargs = {
        "email": form.cleaned_data["email"],
        "name": form.cleaned_data["name"],
        "tz": form.cleaned_data["timezone"],
        "choices": form.choices(),
        "now": timezone.now(),
    }
    if payload.confirmation == "double_opt_in":
        _double_opt_in(
            request_kwargs | {"language": payload.language}, client=_client(payload.client_ip, token=request.auth)
        )
        return Status(202, {"detail": CONFIRMATION_SENT})
    if payload.consent is None:
        raise Invalid(
            "consent_recorded needs `consent`: what the reader agreed to, and when.",
            errors=[{"field": "consent", "message": "required with consent_recorded"}],
        )
    subscriber = _consented(
        request_kwargs,
        consent=payload.consent,
        newsletters=[n for n in newsletters if n.pk in request_kwargs["choices"]],
        token=request.auth,
    )
    if payload.language:
        Subscriber.objects.filter(pk=subscriber.pk).update(language=payload.language)
    return Status(201, _subscriber(subscriber.pk))


def _language_check(language: str) -> None:
    """Refuse a language that is not shipped, as the preferences page does."""
    try:
        validate_shipped_language(language)
    except ValidationError as error:
        raise invalid_from(ValidationError({"language": error.messages})) from None


def _client(client_ip: str | None, *, token) -> str:
    """Who the per-client rate limit counts: the reader's address if the caller gave it, else the token."""
    if client_ip is None:
        return f"api:{token.pk}"
    try:
        return str(ipaddress.ip_address(client_ip))
    except ValueError:
        raise Invalid(
            "client_ip is not an IP address.", errors=[{"field": "client_ip", "message": "not an IP address"}]
        ) from None


def _double_opt_in(request_kwargs: dict, *, client: str) -> None:
    """Mail the confirmation link, as the subscribe page does; the same outcome whether or not a mail went."""
    try:
        subscription_request(**request_kwargs, client=client)
    except RateLimited as error:
        raise TooManyRequests(str(error), retry_after=newsletters_settings.RATE_PERIOD) from None


def _consented(request_kwargs: dict, *, consent, newsletters: list, token) -> Subscriber:
    """Subscribe at once by the confirmed import's rules and keep the consent; nothing changes if any is refused."""
    with transaction.atomic():
        counts = subscriber_enrol(**request_kwargs)
        if counts["skipped_opted_out"]:
            raise Conflict(
                "The address (or one of these subscriptions) unsubscribed or was suppressed: only the reader's "
                "own confirmation subscribes it again (use double_opt_in)."
            )
        subscriber = Subscriber.objects.get(email__iexact=request_kwargs["email"])
        consent_record(
            subscriber=subscriber,
            newsletters=newsletters,
            text=consent.text,
            given_at=consent.given_at,
            source_ip=consent.source_ip,
            recorded_by=token.name,
        )
    return subscriber


@router.get(
    "/subscribers/{subscriber_id}", response=answers(200, SubscriberOut), auth=READ, summary="Read a subscriber"
)
def subscriber_read(request, subscriber_id: Id):
    return _subscriber(subscriber_id)


@router.patch(
    "/subscribers/{subscriber_id}",
    response=answers(200, SubscriberOut),
    auth=SUBSCRIBERS,
    summary="Change a subscriber",
)
def subscriber_update(request, subscriber_id: Id, payload: SubscriberPatch):
    """Change the name, time zone or language, as the reader's preferences page does."""
    subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
    name = subscriber.name if payload.name is None else payload.name.strip()
    tz = subscriber.timezone if payload.timezone is None else payload.timezone
    language = subscriber.language if payload.language is None else payload.language
    refused = {}
    checks = (
        ("name", validate_single_line, name),
        ("timezone", validate_timezone, tz),
        ("language", validate_shipped_language, language),
    )
    for field, validator, value in checks:
        try:
            validator(value)  # the preferences form's own validators
        except ValidationError as error:
            refused[field] = error.messages
    if refused:
        raise invalid_from(ValidationError(refused))
    _preferences_apply(subscriber, name=name, tz=tz, language=language)
    return _subscriber(subscriber_id)


def _preferences_apply(
    subscriber: Subscriber, *, name: str, tz: str, change: PreferenceChange | None = None, language: str | None = None
) -> None:
    """Save through the preferences page's service: each subscription as it is, but `change`."""
    changes = [
        change if change and change.subscription_id == s.pk else PreferenceChange(s.pk, s.frequency, s.status)
        for s in subscriber.subscriptions.all()
    ]
    preferences_update(subscriber=subscriber, name=name, tz=tz, changes=changes, now=timezone.now(), language=language)


@router.delete(
    "/subscribers/{subscriber_id}", response=answers(204, None), auth=SUBSCRIBERS, summary="Delete a subscriber"
)
def subscriber_delete(request, subscriber_id: Id):
    """Erase a subscriber with their subscriptions, digests' records and bounce events (a right-to-erasure request)."""
    get_object_or_404(Subscriber, pk=subscriber_id).delete()
    return Status(204, None)


@router.get("/subscriptions", response=answers(200, Page[SubscriptionOut]), auth=READ, summary="List subscriptions")
def subscription_list(
    request,
    newsletter: Id | None = None,
    subscriber: Id | None = None,
    status: Literal["pending", "active", "paused", "unsubscribed"] | None = None,
    created_after: Moment | None = None,
    created_before: Moment | None = None,
    cursor: str | None = None,
    limit: int = Query(PAGE_SIZE, ge=1, le=PAGE_SIZE_MAX),
):
    """Subscriptions in id order, filtered by newsletter, subscriber, status and creation time."""
    queryset = filtered(
        Subscription.objects.all(),
        newsletter_id=newsletter,
        subscriber_id=subscriber,
        status=status,
        created_at__gte=created_after,
        created_at__lt=created_before,
    )
    return paginate(queryset, cursor=cursor, limit=limit, values=SUBSCRIPTION_FIELDS)


@router.get(
    "/subscriptions/{subscription_id}", response=answers(200, SubscriptionOut), auth=READ, summary="Read a subscription"
)
def subscription_read(request, subscription_id: Id):
    return get_object_or_404(Subscription, pk=subscription_id)


@router.patch(
    "/subscriptions/{subscription_id}",
    response=answers(200, SubscriptionOut),
    auth=SUBSCRIBERS,
    summary="Change frequency or status",
)
def subscription_update(request, subscription_id: Id, payload: SubscriptionPatch):
    """Change how often, or pause, resume or stop, as the reader's preferences page does.

    A pending subscription becomes active only when the reader confirms: the API cannot skip
    the double opt-in.
    """
    subscription = get_object_or_404(Subscription.objects.select_related("subscriber"), pk=subscription_id)
    status = payload.status or subscription.status
    if subscription.status == SubscriptionStatus.PENDING and status != SubscriptionStatus.PENDING:
        if status == SubscriptionStatus.UNSUBSCRIBED:
            subscription_unsubscribe(subscription_id=subscription.pk, now=timezone.now())
            subscription.refresh_from_db()
            return subscription
        raise Conflict("The subscription waits for the reader's confirmation; only that makes it active.")
    subscriber = subscription.subscriber
    change = PreferenceChange(subscription.pk, payload.frequency or subscription.frequency, status)
    _preferences_apply(subscriber, name=subscriber.name, tz=subscriber.timezone, change=change)
    subscription.refresh_from_db()
    return subscription


@router.post(
    "/subscriptions/{subscription_id}/unsubscribe",
    response=answers(200, SubscriptionOut),
    auth=SUBSCRIBERS,
    summary="Unsubscribe",
)
def subscription_stop(request, subscription_id: Id):
    """Stop at once, as the one-click link does: no digest not yet handed to SMTP is sent. Idempotent."""
    subscription = get_object_or_404(Subscription, pk=subscription_id)
    subscription_unsubscribe(subscription_id=subscription.pk, now=timezone.now())
    subscription.refresh_from_db()
    return subscription
