"""Writing events: one outbox row per endpoint that wants it, in the caller's transaction.

The receivers (hooks.receivers) call this from inside the transaction of the change an event
tells of, so the change and its events commit together or not at all: a process killed
after the commit loses nothing (the rows wait for a worker), one killed before it leaves
neither. Delivery (hooks.delivery) only ever reads these rows.

Order: an endpoint's events go out in id order. A change to a subscription or subscriber
locks its row before its event is written, so of two changes to one reader the later one's
event gets the higher id.
"""

import datetime
import json

from django.core.serializers.json import DjangoJSONEncoder

from hooks.models import Endpoint, Event, EventType


def event_body(*, type: str, data: dict, now: datetime.datetime) -> str:
    """Return the JSON an event carries: its type, when it happened, and its data."""
    return json.dumps(
        {"type": type, "timestamp": now.isoformat(), "data": data},
        cls=DjangoJSONEncoder,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def endpoints_wanting(
    *, type: EventType, newsletter_ids: list[int] | None, key: str = "", once: bool = False
) -> list[Endpoint]:
    """Return the endpoints of these newsletters (None: of all) that subscribed to this type of event.

    Paused endpoints too: their events wait for them to be resumed. With `once`, endpoints that
    already have an event of this type and key are left out (an issue saved again after publishing).
    """
    endpoints = Endpoint.objects.only("id", "events")
    if newsletter_ids is not None:
        endpoints = endpoints.filter(newsletter_id__in=newsletter_ids)
    wanting = [endpoint for endpoint in endpoints if type in endpoint.events]
    if once and wanting:
        done = set(Event.objects.filter(endpoint__in=wanting, type=type, key=key).values_list("endpoint_id", flat=True))
        wanting = [endpoint for endpoint in wanting if endpoint.pk not in done]
    return wanting


def events_record(
    *,
    type: EventType,
    data: dict,
    key: str,
    now: datetime.datetime,
    newsletter_ids: list[int] | None = None,
    endpoints: list[Endpoint] | None = None,
) -> list[Event]:
    """Write the event for each of `endpoints` (default: every endpoint_wanting it); return the rows."""
    if endpoints is None:
        endpoints = endpoints_wanting(type=type, newsletter_ids=newsletter_ids)
    if not endpoints:
        return []
    body = event_body(type=type, data=data, now=now)
    return Event.objects.bulk_create(
        [Event(endpoint=endpoint, type=type, key=key, body=body, created_at=now) for endpoint in endpoints]
    )
