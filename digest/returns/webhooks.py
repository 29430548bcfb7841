"""ESP events (django-anymail's tracking webhooks) into the same bounce policy as returned mail.

Anymail turns each ESP's webhook (Amazon SES through SNS, Mailgun, Postmark, SendGrid,
Brevo, SparkPost…) into normalized events; `bounced` and `rejected` (for a bad address)
are hard or soft bounces by their status code, `complained` a complaint, `unsubscribed`
an unsubscribe. The subscriber is found by the event's recipient.

The endpoints are /anymail/<esp>/tracking/ and answer 404 until ANYMAIL's WEBHOOK_SECRET
is set: anymail accepts unauthenticated posts otherwise (with only a warning), and a
forged event must never unsubscribe anyone. Anymail checks the basic auth (and Mailgun's,
Postal's or SparkPost's own signatures) on every post.

Anyone can post to them, so they answer every bad post themselves, with a log line and no
mail to ADMINS (Django mails them for a 500 and for a SuspiciousOperation): a refused
signature or password 400, an ESP whose own key is not set 403, a body the ESP's parser
cannot read 400.
"""

import datetime
import functools
import json
import logging
import re

import idna
from anymail import urls as anymail_urls
from anymail.exceptions import AnymailConfigurationError, AnymailError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking
from anymail.utils import get_anymail_setting
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.urls import URLPattern
from django.utils import timezone

from digest.models import BounceEvent, BounceKind
from digest.returns.policy import Report, bounce_record, db_text, fingerprint_of
from newsletters.models import Subscriber
from newsletters.validators import email_normalize

logger = logging.getLogger(__name__)

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?:^|[\s;:])([245])\d\d(?=[\s-]|$)")
_REJECTED_HARD = {RejectReason.BOUNCED, RejectReason.INVALID}


def tracking_event_record(*, event: AnymailTrackingEvent, esp_name: str, now: datetime.datetime) -> BounceEvent | None:
    """Apply the bounce policy to one ESP event; None when it is not about us or was recorded before."""
    kind, status = _kind(event)
    if kind is None:
        return None
    subscriber = _subscriber(db_text(str(event.recipient or ""), 320))
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


def _subscriber(address: str) -> Subscriber | None:
    """Find a subscriber by address, its domain in either form (ESPs report IDN domains in punycode).

    Addresses are stored with Unicode domains (email_normalize); older rows may hold punycode.
    """
    if not address:
        return None
    forms = {address}
    try:
        unicode = email_normalize(address)
        local, _, domain = unicode.rpartition("@")
        forms |= {unicode, f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"}
    except (ValidationError, idna.IDNAError):
        pass  # not an address we could have stored in another form: the form as given only
    query = Q()
    for form in forms:
        query |= Q(email__iexact=form)
    return Subscriber.objects.filter(query).first()


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
    tracking.connect(_tracking_received, dispatch_uid="digest.returns.webhooks")


def _secured(view, esp: str):
    """Serve the view only once ANYMAIL's WEBHOOK_SECRET is set, and answer every bad post with a 4xx."""

    @functools.wraps(view)  # keeps csrf_exempt: ESPs post without a CSRF token
    def secured(request, *args, **kwargs) -> HttpResponse:
        if not get_anymail_setting("webhook_secret", default=None):
            raise Http404("ANYMAIL WEBHOOK_SECRET is not set")
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure as error:
            logger.warning("%s webhook: post refused: %s", esp, error)
            return HttpResponseBadRequest("Not authenticated.")
        except AnymailConfigurationError as error:
            logger.warning("%s webhook: post refused, the ESP is not set up here: %s", esp, error)
            return HttpResponseForbidden("This ESP is not set up.")
        except (AnymailError, ValueError, LookupError, TypeError, AttributeError) as error:
            # The ESP's parser met a body it does not expect: JSON that is not, fields of the
            # wrong type, a missing key. Nothing was recorded from it.
            logger.warning("%s webhook: malformed post refused: %r", esp, error)
            return HttpResponseBadRequest("Malformed post.")

    return secured


def _tracking_urls() -> list[URLPattern]:
    return [
        URLPattern(
            pattern.pattern,
            _secured(pattern.callback, pattern.name.removesuffix("_tracking_webhook")),
            pattern.default_args,
            pattern.name,
        )
        for pattern in anymail_urls.urlpatterns
        if isinstance(pattern, URLPattern) and pattern.name and pattern.name.endswith("_tracking_webhook")
    ]


urlpatterns = _tracking_urls()
