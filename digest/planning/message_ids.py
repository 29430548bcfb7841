"""Message-IDs of digests: the same on every retry of a window, unique per installation, signed."""

import datetime

from django.utils.crypto import salted_hmac

from digest.models import installation_key
from newsletters.conf import site_domain

__all__ = ["installation_key", "message_id_for"]


def message_id_for(subscription_id: int, end: datetime.datetime, *, installation: str) -> str:
    """Return the Message-ID of the digest of this window: the same on every retry.

    The installation's id is in it, so two databases sharing a SECRET_KEY never mint the same
    Message-ID for their subscription 1's window. It ends with a signature, so a complaint
    matched by its Message-ID (digest.returns.returned) cannot be forged for another reader from a
    guessed id and date. digest.planning.plan_sql computes the same in SQL.
    """
    local = f"digest.{installation}.{subscription_id}.{end:%Y%m%dT%H%M%S}Z"
    signature = salted_hmac("digest.message-id", local, algorithm="sha256").hexdigest()[:12]
    return f"<{local}.{signature}@{site_domain()}>"
