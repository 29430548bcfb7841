"""The invitation to confirm that an admin import in "invite" mode sends each new address (double opt-in).

Built here, sent by the digest engine (its ledger of letters, its pace): one mail per pending
subscription an import named, with a signed confirm link that, like the subscribe form's,
carries the request (the address, name, time zone and the newsletter with its frequency), so
following it activates the subscription through newsletters.services.subscription_confirm.
"""

import datetime

from django.template.loader import render_to_string

from newsletters.conf import newsletters_settings, site_url
from newsletters.emails import email_html
from newsletters.messages import ReaderEmail
from newsletters.models import Frequency, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.services import list_headers
from newsletters.tokens import confirm_url


def invitation_unwanted(subscription: Subscription) -> str:
    """Why an invitation should not go out (the reader confirmed, left or bounced meanwhile); "" when it should."""
    if subscription.subscriber.status != SubscriberStatus.PENDING:
        return f"the reader is {subscription.subscriber.status}"
    if subscription.status != SubscriptionStatus.PENDING:
        return f"the subscription is {subscription.status}"
    return ""


def invitation_message(subscription: Subscription, *, now: datetime.datetime) -> ReaderEmail:
    """Build the invitation to confirm one pending subscription (the caller sets the Message-ID and sends it)."""
    subscriber, newsletter = subscription.subscriber, subscription.newsletter
    payload = {
        "e": subscriber.email,
        "n": subscriber.name,
        "tz": subscriber.timezone,
        "c": {str(newsletter.pk): subscription.frequency},
        "iat": int(now.timestamp()),
    }
    context = {
        "name": subscriber.name,
        "newsletter": newsletter,
        "frequency": Frequency(subscription.frequency).label,
        "confirm_url": confirm_url(payload),
        "max_age_days": newsletters_settings.CONFIRM_MAX_AGE_DAYS,
        "archive_url": site_url(newsletter.get_absolute_url()),
        "site_url": site_url(),
        "preheader": "One click confirms it; without it you receive nothing more.",
        "postal_addresses": [newsletter.postal_address.strip()] if newsletter.postal_address.strip() else [],
    }
    message = ReaderEmail(
        subject=" ".join(render_to_string("emails/invitation_subject.txt", context).split()),
        body=render_to_string("emails/invitation.txt", context),
        from_email=newsletter.from_email or None,
        to=[subscriber.email],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=list_headers(subscriber, newsletter),
    )
    message.attach_alternative(email_html("emails/invitation.html", context), "text/html")
    return message
