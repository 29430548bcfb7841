"""The invitation to confirm that an admin import in "invite" mode sends each new address (double opt-in).

Built here, sent by the digest engine (its ledger of letters, its pace): one mail per pending
subscription an import named, with a signed confirm link that, like the subscribe form's,
carries the request (the address, name, time zone and the newsletter with its frequency), so
following it activates the subscription through newsletters.services.subscription_confirm.
"""

import datetime

from django.utils import translation
from django.utils.translation import gettext

from newsletters.conf import newsletters_settings, site_url
from newsletters.languages import mail_language
from newsletters.letters import letter_render, reader_message
from newsletters.messages import ReaderEmail
from newsletters.models import Frequency, SubscriberStatus, Subscription, SubscriptionStatus
from newsletters.tokens import confirm_url


def invitation_unwanted(subscription: Subscription) -> str:
    """Why an invitation should not go out (the reader confirmed, left or bounced meanwhile); "" when it should."""
    if subscription.subscriber.status != SubscriberStatus.PENDING:
        return f"the reader is {subscription.subscriber.status}"
    if subscription.status != SubscriptionStatus.PENDING:
        return f"the subscription is {subscription.status}"
    return ""


def invitation_message(subscription: Subscription, *, now: datetime.datetime) -> ReaderEmail:
    """Build the invitation to confirm one pending subscription (the caller sets the Message-ID and sends it).

    In the newsletter's templates and branding, with its list headers (newsletters.letters), and in
    the reader's language (else the newsletter's: newsletters.languages.mail_language).
    Raises ValueError for a List-Id that cannot be written, as every reader letter does.
    """
    subscriber, newsletter = subscription.subscriber, subscription.newsletter
    with translation.override(mail_language(reader=subscriber.language, newsletter=newsletter.language)):
        return _invitation_message(subscription, now=now)


def _invitation_message(subscription: Subscription, *, now: datetime.datetime) -> ReaderEmail:
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
        "preheader": gettext("One click confirms it; without it you receive nothing more."),
        "postal_addresses": [newsletter.postal_address.strip()] if newsletter.postal_address.strip() else [],
    }
    return reader_message(subscription, letter_render("invitation", context, newsletter=newsletter))
