"""Signatures as Standard Webhooks (standardwebhooks.com) defines them, so its libraries verify ours.

The secret is `whsec_` and 32 random bytes in base64. A request carries `webhook-id` (the
event's id, the same on retries), `webhook-timestamp` (seconds since the epoch when it was
sent) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body" keyed with the
secret's bytes>`. A receiver recomputes it, compares in constant time, refuses a timestamp
more than a few minutes off its clock (a replayed capture), and dedupes by webhook-id.
"""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def secret_generate() -> str:
    """Return a new endpoint secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signature_make(*, secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Return the webhook-signature header's value for one request."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def headers_signed(*, secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the headers of one signed request."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "digest-engine-webhooks/1",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_make(secret=secret, webhook_id=webhook_id, timestamp=timestamp, body=body),
    }
