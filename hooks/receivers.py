"""Where events come from: receivers of the newsletters app's signals and of two digest models' saves.

Neither newsletters nor digest knows this app: newsletters sends its own signals (from
inside the transaction of each change) and digest's BounceEvent and Run rows are caught as
they are saved. Each receiver writes the outbox (hooks.outbox) in that same transaction and
asks, once it commits, for a delivery.
"""

from collections.abc import Callable
from functools import partial

from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from digest.models import BounceEvent, BounceKind, Run
from hooks.models import Endpoint, EventType
from hooks.outbox import endpoints_wanting, events_record
from hooks.payloads import bounce_data, issue_data, run_data, subscriber_data, subscription_data
from hooks.tasks import deliveries_enqueue
from newsletters.models import Issue, IssueStatus, Newsletter, Subscription
from newsletters.signals import subscriber_confirmed, subscription_changed, subscriptions_unsubscribed


def _record(
    *, type: EventType, data: Callable[[], dict], key: str, now, newsletter_ids: list[int] | None, once: bool = False
) -> None:
    """Write the event for the endpoints that want it; build its data only if one does."""
    wanting = endpoints_wanting(type=type, newsletter_ids=newsletter_ids, key=key, once=once)
    if not wanting:
        return
    events_record(type=type, data=data(), key=key, now=now, endpoints=wanting)
    endpoint_ids = sorted(endpoint.pk for endpoint in wanting)
    transaction.on_commit(partial(deliveries_enqueue, endpoint_ids=endpoint_ids, inline=False))


def _subscription_event(type: EventType, subscription: Subscription, now) -> None:
    _record(
        type=type,
        data=lambda: {
            "subscriber": subscriber_data(subscription.subscriber),
            "subscription": subscription_data(subscription),
        },
        key=f"subscriber:{subscription.subscriber_id}",
        now=now,
        newsletter_ids=[subscription.newsletter_id],
    )


def on_subscriber_confirmed(sender, *, subscriber, subscriptions, now, **kwargs) -> None:
    for subscription in subscriptions:
        _subscription_event(EventType.SUBSCRIBER_CONFIRMED, subscription, now)


def on_subscription_changed(sender, *, subscription, now, **kwargs) -> None:
    _subscription_event(EventType.SUBSCRIPTION_CHANGED, subscription, now)


def on_subscriptions_unsubscribed(sender, *, subscription_ids, now, **kwargs) -> None:
    # One query when no endpoint wants it: a one-click unsubscribe (RFC 8058) stays this cheap.
    wanted = Endpoint.objects.filter(newsletter__subscriptions__pk__in=subscription_ids).values_list(
        "events", flat=True
    )
    if not any(EventType.SUBSCRIPTION_UNSUBSCRIBED in events for events in wanted):
        return
    stopped = Subscription.objects.filter(pk__in=subscription_ids).select_related("subscriber", "newsletter")
    for subscription in stopped.order_by("id"):
        _subscription_event(EventType.SUBSCRIPTION_UNSUBSCRIBED, subscription, now)


_BOUNCE_EVENTS = {BounceKind.HARD: EventType.BOUNCE_HARD, BounceKind.COMPLAINT: EventType.COMPLAINT}


def on_bounce_saved(sender, *, instance: BounceEvent, created: bool, raw: bool = False, **kwargs) -> None:
    """A hard bounce or complaint: told to the newsletter of the digest it names, else to all the reader's."""
    if not created or raw or instance.kind not in _BOUNCE_EVENTS:
        return
    if instance.delivery_id:
        newsletter_ids = [instance.delivery.newsletter_id]
    else:
        newsletter_ids = list(instance.subscriber.subscriptions.values_list("newsletter_id", flat=True))
    _record(
        type=_BOUNCE_EVENTS[instance.kind],
        data=lambda: {"subscriber": subscriber_data(instance.subscriber), "bounce": bounce_data(instance)},
        key=f"subscriber:{instance.subscriber_id}",
        now=timezone.now(),
        newsletter_ids=newsletter_ids,
    )


def on_issue_saved(sender, *, instance: Issue, raw: bool = False, **kwargs) -> None:
    """issue.published once per issue and endpoint, when it is first saved as published (or scheduled)."""
    if raw or instance.status != IssueStatus.PUBLISHED:
        return
    _record(
        type=EventType.ISSUE_PUBLISHED,
        data=lambda: {"issue": issue_data(instance)},
        key=f"issue:{instance.pk}",
        now=timezone.now(),
        newsletter_ids=[instance.newsletter_id],
        once=True,
    )


def on_run_saved(sender, *, instance: Run, created: bool, raw: bool = False, **kwargs) -> None:
    """A digest run ended: told to the endpoints of its newsletter, or of all when it ran for all."""
    if not created or raw:
        return
    newsletter_ids = None
    if instance.newsletter:
        newsletter_ids = list(Newsletter.objects.filter(slug=instance.newsletter).values_list("id", flat=True))
    _record(
        type=EventType.RUN_FINISHED,
        data=lambda: {"run": run_data(instance)},
        key=f"run:{instance.pk}",
        now=timezone.now(),
        newsletter_ids=newsletter_ids,
    )


def receivers_connect() -> None:
    """Connect every receiver (HooksConfig.ready)."""
    subscriber_confirmed.connect(on_subscriber_confirmed, dispatch_uid="hooks.confirmed")
    subscription_changed.connect(on_subscription_changed, dispatch_uid="hooks.changed")
    subscriptions_unsubscribed.connect(on_subscriptions_unsubscribed, dispatch_uid="hooks.unsubscribed")
    post_save.connect(on_bounce_saved, sender=BounceEvent, dispatch_uid="hooks.bounce")
    post_save.connect(on_issue_saved, sender=Issue, dispatch_uid="hooks.issue")
    post_save.connect(on_run_saved, sender=Run, dispatch_uid="hooks.run")
