"""ESP events (django-anymail's tracking webhooks) into the same bounce policy as returned mail.

Anymail turns each ESP's webhook (Amazon SES through SNS, Mailgun, Postmark, SendGrid,
Brevo, SparkPost…) into normalized events; `bounced` and `rejected` (for a bad address)
are hard or soft bounces by their status code, `complained` a complaint, `unsubscribed`
an unsubscribe. The subscriber is found by the event's recipient.

The endpoints are /anymail/<esp>/tracking/ and answer 404 until ANYMAIL's WEBHOOK_SECRET
is set: anymail accepts unauthenticated posts otherwise (with only a warning), and a
forged event must never unsubscribe anyone. Anymail checks the basic auth (and Mailgun's,
Postal's or SparkPost's own signatures) on every post.
"""

import datetime
import functools
import json
import logging
import re

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking
from anymail.utils import get_anymail_setting
from django.http import Http404
from django.urls import URLPattern
from django.utils import timezone

from digest.bounces import Report, bounce_record, fingerprint_of
from digest.models import BounceEvent, BounceKind
from newsletters.models import Subscriber

logger = logging.getLogger(__name__)

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?:^|[\s;:])([245])\d\d(?=[\s-]|$)")
_REJECTED_HARD = {RejectReason.BOUNCED, RejectReason.INVALID}


def tracking_event_record(*, event: AnymailTrackingEvent, esp_name: str, now: datetime.datetime) -> BounceEvent | None:
    """Apply the bounce policy to one ESP event; None when it is not about us or was recorded before."""
    kind, status = _kind(event)
    if kind is None:
        return None
    subscriber = Subscriber.objects.filter(email__iexact=event.recipient or "").first()
    if subscriber is None:
        logger.info("%s %s event for an address we do not know: ignored", esp_name, event.event_type)
        return None
    identity = event.event_id or (event.event_type, event.recipient, event.timestamp, event.message_id)
    report = Report(
        kind=kind,
        source=esp_name.lower(),
        occurred_at=event.timestamp or now,
        fingerprint=fingerprint_of("anymail", esp_name, identity, event.recipient),
        status=status,
        diagnostic=" ".join(filter(None, [event.description, event.mta_response]))[:2000],
        raw=_raw(event.esp_event),
    )
    return bounce_record(report=report, subscriber=subscriber, now=now)


def _kind(event: AnymailTrackingEvent) -> tuple[BounceKind | None, str]:
    if event.event_type == EventType.COMPLAINED:
        return BounceKind.COMPLAINT, ""
    if event.event_type == EventType.UNSUBSCRIBED:
        return BounceKind.UNSUBSCRIBED, ""
    bounced = event.event_type == EventType.BOUNCED
    if event.event_type == EventType.REJECTED and event.reject_reason in _REJECTED_HARD:
        bounced = True
    if not bounced:
        return None, ""
    text = " ".join(filter(None, [event.mta_response, event.description]))
    found = _STATUS.search(text)
    code_class = found.group(1)[0] if found else ""
    if not code_class:
        smtp = _SMTP_CODE.search(text)
        code_class = smtp.group(1) if smtp else ""
    # SES says "Transient: MailboxFull", Postmark "SoftBounce", SendGrid and others a 4xx code.
    soft = code_class == "4" or re.search(r"\btransient\b|soft ?bounce|\bdeferred\b", text, re.IGNORECASE)
    return (BounceKind.SOFT if soft else BounceKind.HARD), found.group(1) if found else ""


def _raw(esp_event) -> str:
    try:
        return json.dumps(esp_event, default=str)[:100_000]
    except (TypeError, ValueError):
        return repr(esp_event)[:100_000]


def _tracking_received(sender, event, esp_name, **kwargs) -> None:
    tracking_event_record(event=event, esp_name=esp_name, now=timezone.now())


def tracking_connect() -> None:
    """Listen to anymail's tracking signal (called once, from the app's ready())."""
    tracking.connect(_tracking_received, dispatch_uid="digest.webhooks")


def _secured(view):
    """Serve the view only once ANYMAIL's WEBHOOK_SECRET is set (anymail then checks it on each post)."""

    @functools.wraps(view)  # keeps csrf_exempt: ESPs post without a CSRF token
    def secured(request, *args, **kwargs):
        if not get_anymail_setting("webhook_secret", default=None):
            raise Http404("ANYMAIL WEBHOOK_SECRET is not set")
        return view(request, *args, **kwargs)

    return secured


def _tracking_urls() -> list[URLPattern]:
    from anymail import urls

    return [
        URLPattern(pattern.pattern, _secured(pattern.callback), pattern.default_args, pattern.name)
        for pattern in urls.urlpatterns
        if isinstance(pattern, URLPattern) and pattern.name and pattern.name.endswith("_tracking_webhook")
    ]


urlpatterns = _tracking_urls()
