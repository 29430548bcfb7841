"""A reader's own data in the engine: what the download adds, and what erasing them removes.

newsletters.privacy asks through its signals (newsletters never imports digest). The download
gets the reader's digests (when, which window, what happened) and what came back about their
mail. Erasing keeps the ledger's rows, which say what was sent and stop it being sent again,
and removes what holds their address or words about them: the returned messages kept raw,
the remote servers' diagnostics and the last errors (which quote the address).
"""

from digest.models import BounceEvent, Delivery
from newsletters.models import Subscriber


def subscriber_data(sender, *, subscriber: Subscriber, **kwargs) -> dict:
    """The reader's digests and the bounces and complaints about their mail (a subscriber_data_export receiver)."""
    deliveries = Delivery.objects.filter(subscription__subscriber=subscriber).select_related("newsletter")
    events = BounceEvent.objects.filter(subscriber=subscriber).order_by("occurred_at", "id")
    return {
        "digests": [
            {
                "newsletter": delivery.newsletter.name,
                "issues_published_after": delivery.window_start,
                "up_to": delivery.window_end,
                "status": delivery.status,
                "sent_at": delivery.sent_at,
                "message_id": delivery.message_id,
            }
            for delivery in deliveries.order_by("window_end", "id")
        ],
        "returned_mail": [
            {"kind": event.kind, "at": event.occurred_at, "status": event.status, "action": event.action}
            for event in events
        ],
    }


def subscriber_erase(sender, *, subscriber: Subscriber, address_hash: str, **kwargs) -> None:
    """Remove what the engine holds that quotes the reader (a subscriber_erasing receiver, in its transaction)."""
    BounceEvent.objects.filter(subscriber=subscriber).update(raw="", diagnostic="")
    Delivery.objects.filter(subscription__subscriber=subscriber).exclude(last_error="").update(last_error="")
