"""When a newsletter's send time falls for one reader: pure clock math, no database.

Daily and weekly digests go out at the newsletter's local send time (on its weekday for
weekly) in each reader's own time zone, DST-correct. The digest engine stores the next
occurrence per subscription; the preferences page shows it to the reader.
"""

import datetime
import logging
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Schedule:
    """When a daily or weekly digest goes out for one reader: the send time on the newsletter's
    weekday (weekly), in the reader's zone."""

    frequency: str
    send_time: datetime.time
    weekday: int
    tz_name: str

    @classmethod
    def of(cls, subscription: Subscription) -> "Schedule":
        """A subscription's schedule: its frequency, its newsletter's send time and weekday, its reader's zone."""
        newsletter = subscription.newsletter
        return cls(
            subscription.frequency, newsletter.send_time, newsletter.weekly_day, subscription.subscriber.timezone
        )

    def next_after(self, after: datetime.datetime) -> datetime.datetime:
        """The first send time strictly after `after` (UTC)."""
        return occurrence_next(after=after, **self._fields())

    def last_at(self, at: datetime.datetime) -> datetime.datetime:
        """The latest send time at or before `at` (UTC)."""
        return occurrence_last(at=at, **self._fields())

    def _fields(self) -> dict:
        return {
            "frequency": self.frequency,
            "send_time": self.send_time,
            "weekday": self.weekday,
            "tz_name": self.tz_name,
        }


def subscription_next_due(subscription: Subscription, *, after: datetime.datetime) -> datetime.datetime | None:
    """Return when a subscription is next due after `after`; None for immediate ones (idle)."""
    if subscription.frequency == Frequency.IMMEDIATE:
        return None
    return Schedule.of(subscription).next_after(after)
