"""A reader's own data: download everything held about them, and delete themselves (GDPR art. 15, 17).

Deleting keeps the Subscriber and Subscription rows, because the sending ledger (digest's
Delivery rows, exactly-once across crashes) hangs off them, but removes what identifies the
reader: the address becomes a keyed hash (HMAC-SHA256 with SECRET_KEY) at `erased.invalid`,
the name goes, every subscription stops. Other apps remove theirs on the `subscriber_erasing`
signal. The deletion is asked for from the preferences page and confirmed from a mail, so a
forwarded preferences link cannot delete anyone.
"""

import datetime
import hashlib
import hmac

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from newsletters.conf import site_url
from newsletters.emails import email_html
from newsletters.languages import mail_language
from newsletters.messages import ReaderEmail
from newsletters.models import Subscriber, SubscriberImport, SubscriberStatus, SubscriptionStatus
from newsletters.signals import subscriber_data_export, subscriber_erasing
from newsletters.tokens import erase_url

ERASE_LINK_DAYS = 2
ERASE_MAILS_PER_DAY = 3
ERASED_DOMAIN = "erased.invalid"


def address_hash(email: str) -> str:
    """The keyed hash an erased reader's address is kept as (who knows the address can find the row; nobody else)."""
    key = f"newsletters.erase:{settings.SECRET_KEY}".encode()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def subscriber_export(*, subscriber: Subscriber) -> dict:
    """Return everything held about a reader, as JSON-ready data."""
    data = {
        "subscriber": {
            "email": subscriber.email,
            "name": subscriber.name,
            "timezone": subscriber.timezone,
            "language": subscriber.language,
            "status": subscriber.status,
            "confirmed_at": subscriber.confirmed_at,
            "created_at": subscriber.created_at,
            "consecutive_failures": subscriber.consecutive_failures,
        },
        "subscriptions": [
            {
                "newsletter": s.newsletter.name,
                "newsletter_slug": s.newsletter.slug,
                "frequency": s.frequency,
                "status": s.status,
                "created_at": s.created_at,
                "unsubscribed_at": s.unsubscribed_at,
                "last_digest_covered_until": s.cursor,
                "next_digest_at": s.next_due_at,
                "imported": _import_record(s.subscriber_import),
            }
            for s in subscriber.subscriptions.select_related("newsletter", "subscriber_import").order_by(
                "newsletter__name"
            )
        ],
    }
    for _receiver, extra in subscriber_data_export.send(sender=Subscriber, subscriber=subscriber):
        data |= extra or {}
    return data


def _import_record(record: SubscriberImport | None) -> dict | None:
    """The admin import that brought a subscription in: the file, who, when, and on what grounds."""
    if record is None:
        return None
    return {
        "file": record.file_name,
        "by": record.imported_by_name,
        "at": record.created_at,
        "grounds": record.get_mode_display(),
    }


def subscriber_erase_request(*, subscriber: Subscriber, now: datetime.datetime) -> bool:
    """Mail the reader a link that deletes them (valid ERASE_LINK_DAYS); return whether it went out."""
    if subscriber.email.endswith("@" + ERASED_DOMAIN):
        return False
    key = f"erase:{subscriber.pk}"
    cache.add(key, 0, timeout=86400)
    if cache.incr(key) > ERASE_MAILS_PER_DAY:
        return False
    with translation.override(mail_language(reader=subscriber.language, newsletter="")):
        return _erase_mail_send(subscriber)


def _erase_mail_send(subscriber: Subscriber) -> bool:
    context = {
        "erase_url": erase_url(subscriber.pk, address_hash(subscriber.email)),
        "days": ERASE_LINK_DAYS,
        "name": subscriber.name,
        "site_url": site_url(),
        "preheader": gettext("One click deletes your address and everything we hold about you."),
        "postal_addresses": [],
    }
    message = ReaderEmail(
        subject=" ".join(render_to_string("emails/erase_subject.txt", context).split()),
        body=render_to_string("emails/erase.txt", context),
        to=[subscriber.email],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(email_html("erase.html", context), "text/html")
    return message.send() == 1


def subscriber_erase(*, subscriber: Subscriber, now: datetime.datetime) -> None:
    """Delete a reader's personal data, keeping their rows for the ledger with the address hashed."""
    hashed = address_hash(subscriber.email)
    with transaction.atomic():
        subscriber_erasing.send(sender=Subscriber, subscriber=subscriber, address_hash=hashed)
        subscriber.subscriptions.exclude(status=SubscriptionStatus.UNSUBSCRIBED).update(
            status=SubscriptionStatus.UNSUBSCRIBED, next_due_at=None, unsubscribed_at=now, updated_at=now
        )
        subscriber.email = f"{hashed}@{ERASED_DOMAIN}"
        subscriber.name = ""
        subscriber.timezone = "UTC"
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.save(update_fields=["email", "name", "timezone", "status"])
