"""The cron entry beside the digest job (settings.CRONJOBS): gather what is new in every feed."""

import logging

from feeds.services import feeds_fetch_all
from project.clock import db_now

logger = logging.getLogger("feeds.cron")


def fetch_feeds_job() -> None:
    """Cron entry point: one pass over the active feeds, its counts in the log."""
    started = db_now()
    counts = feeds_fetch_all(now=started)
    logger.info("Feeds at %s: %s", started.isoformat(), _summary(counts))


def _summary(counts) -> str:
    return ", ".join(f"{counts[name]} {name}" for name in ["issues", "noted", "unchanged", "failed"])
