"""The webhook job cron runs every minute (HOOKS_CRON_SCHEDULE): deliver what is due, prune what is old."""

import logging

from hooks.delivery import endpoints_due, events_prune
from hooks.tasks import deliveries_enqueue
from project.clock import db_now

logger = logging.getLogger("hooks.cron")


def deliver_webhooks_job() -> None:
    """Cron entry point: deliver (or enqueue) every endpoint's due events; delete old delivered ones."""
    now = db_now()
    due = endpoints_due(now=now)
    deliveries_enqueue(endpoint_ids=due, inline=True)
    pruned = events_prune(now=now)
    if due or pruned:
        logger.info("Webhooks at %s: %d endpoints due, %d old events pruned", now.isoformat(), len(due), pruned)
