"""When a newsletter's send time falls for one reader: pure clock math, no database.

Daily, weekly, fortnightly and monthly digests go out at the newsletter's local send time
(on its weekday for weekly and fortnightly; on its day of the month, or first weekday of the
month, for monthly) in each reader's own time zone, DST-correct. The digest engine stores the next
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
    Frequency.FORTNIGHTLY: datetime.timedelta(days=14),
    Frequency.MONTHLY: datetime.timedelta(days=31),  # the longest month: a first window covers a whole one
}

# Fortnightly digests go out in the even weeks counted from this Monday (ISO weeks would
# skip a beat where a year has 53 of them).
FORTNIGHT_EPOCH = datetime.date(2024, 1, 1)
# Days searched for an occurrence: more than any period.
_SEARCH_DAYS = 40


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


def sends_on(day: datetime.date, *, frequency: str, weekday: int, monthly_day: int = 1) -> bool:
    """Whether a digest of this frequency goes out on this local day."""
    if frequency == Frequency.WEEKLY:
        return day.weekday() == weekday
    if frequency == Frequency.FORTNIGHTLY:
        return day.weekday() == weekday and (day - FORTNIGHT_EPOCH).days // 7 % 2 == 0
    if frequency == Frequency.MONTHLY:
        return day.day == monthly_day if monthly_day else day.weekday() == weekday and day.day <= 7
    return True


def occurrence_next(
    *,
    frequency: str,
    send_time: datetime.time,
    weekday: int,
    tz_name: str,
    after: datetime.datetime,
    monthly_day: int = 1,
) -> datetime.datetime:
    """Return the first send-time occurrence strictly after `after` (UTC)."""
    tz = _zone(tz_name)
    day = after.astimezone(tz).date() - datetime.timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        if sends_on(day, frequency=frequency, weekday=weekday, monthly_day=monthly_day):
            candidate = _occurrence_on(day, send_time, tz)
            if candidate > after:
                return candidate
        day += datetime.timedelta(days=1)
    raise AssertionError(f"an occurrence exists within {_SEARCH_DAYS} days")


def occurrence_last(
    *,
    frequency: str,
    send_time: datetime.time,
    weekday: int,
    tz_name: str,
    at: datetime.datetime,
    monthly_day: int = 1,
) -> datetime.datetime:
    """Return the latest send-time occurrence at or before `at` (UTC)."""
    tz = _zone(tz_name)
    day = at.astimezone(tz).date() + datetime.timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        if sends_on(day, frequency=frequency, weekday=weekday, monthly_day=monthly_day):
            candidate = _occurrence_on(day, send_time, tz)
            if candidate <= at:
                return candidate
        day -= datetime.timedelta(days=1)
    raise AssertionError(f"an occurrence exists within {_SEARCH_DAYS} days")


@dataclass(frozen=True)
class Schedule:
    """When a scheduled digest goes out for one reader: the newsletter's send time on the days
    its frequency sends (sends_on), in the reader's zone."""

    frequency: str
    send_time: datetime.time
    weekday: int
    tz_name: str
    monthly_day: int = 1

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
