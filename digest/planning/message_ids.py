"""Message-IDs of digests: the same on every retry of a window, unique per installation, signed."""

import datetime
import secrets

from django.utils.crypto import salted_hmac

from digest.models import Installation
from newsletters.conf import site_domain


def installation_key() -> str:
    """Return this database's installation id: read once per planning run, for every Message-ID it mints.

    The migration that made the table made the row; it is made here only if the row is gone
    (a flushed test database), and then it is new, as a new installation's would be.
    """
    key = Installation.objects.order_by("pk").values_list("key", flat=True).first()
    if key is None:
        key = Installation.objects.get_or_create(pk=1, defaults={"key": secrets.token_hex(6)})[0].key
    return key


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
