"""When a newsletter's send time falls for one reader: pure clock math, no database.

Daily and weekly digests go out at the newsletter's local send time (on its weekday for
weekly) in each reader's own time zone, DST-correct. The digest engine stores the next
occurrence per subscription; the preferences page shows it to the reader.
"""

import datetime
import logging
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletters.models import Frequency, Subscription

logger = logging.getLogger(__name__)

PERIODS = {
    Frequency.IMMEDIATE: datetime.timedelta(days=1),
    Frequency.DAILY: datetime.timedelta(days=1),
    Frequency.WEEKLY: datetime.timedelta(days=7),
}


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    """Return the zone; one this host does not know (tzdata differs between hosts) is UTC, logged once."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("Time zone %r is unknown on this host: its readers are scheduled in UTC.", name)
        return ZoneInfo("UTC")


def _occurrence_on(day: datetime.date, send_time: datetime.time, tz: ZoneInfo) -> datetime.datetime:
    # A send time in a spring-forward gap resolves (fold=0) to the instant after the gap;
    # in a fall-back overlap, to the first of the two: one send per local day either way.
    return datetime.datetime.combine(day, send_time, tzinfo=tz).astimezone(datetime.UTC)


def occurrence_next(
    *, frequency: str, send_time: datetime.time, weekday: int, tz_name: str, after: datetime.datetime
) -> datetime.datetime:
    """Return the first send-time occurrence strictly after `after` (UTC)."""
    tz = _zone(tz_name)
    day = after.astimezone(tz).date() - datetime.timedelta(days=1)
    for _ in range(10):
        if frequency != Frequency.WEEKLY or day.weekday() == weekday:
            candidate = _occurrence_on(day, send_time, tz)
            if candidate > after:
                return candidate
        day += datetime.timedelta(days=1)
    raise AssertionError("an occurrence exists within ten days")


def occurrence_last(
    *, frequency: str, send_time: datetime.time, weekday: int, tz_name: str, at: datetime.datetime
) -> datetime.datetime:
    """Return the latest send-time occurrence at or before `at` (UTC)."""
    tz = _zone(tz_name)
    day = at.astimezone(tz).date() + datetime.timedelta(days=1)
    for _ in range(10):
        if frequency != Frequency.WEEKLY or day.weekday() == weekday:
            candidate = _occurrence_on(day, send_time, tz)
            if candidate <= at:
                return candidate
        day -= datetime.timedelta(days=1)
    raise AssertionError("an occurrence exists within ten days")


def schedule_of(subscription: Subscription) -> dict:
    """The occurrence_next/occurrence_last arguments of a daily or weekly subscription."""
    return {
        "frequency": subscription.frequency,
        "send_time": subscription.newsletter.send_time,
        "weekday": subscription.newsletter.weekly_day,
        "tz_name": subscription.subscriber.timezone,
    }


def subscription_next_due(subscription: Subscription, *, after: datetime.datetime) -> datetime.datetime | None:
    """Return when a subscription is next due after `after`; None for immediate ones (idle)."""
    if subscription.frequency == Frequency.IMMEDIATE:
        return None
    return occurrence_next(after=after, **schedule_of(subscription))
