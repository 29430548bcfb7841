"""A digest's window (cursor, end]: where it ends for each frequency, where a new reader's first one starts."""

import bisect
import datetime

from digest.models import Window
from digest.planning.due import settled
from newsletters.models import Frequency, Subscription
from newsletters.schedules import PERIODS, Schedule
from newsletters.selectors import issues_published_between


def window_end(
    subscription: Subscription, *, now: datetime.datetime, latest: dict[int, datetime.datetime]
) -> datetime.datetime | None:
    """Return where this subscription's next window ends, or None if nothing can be closed yet."""
    if subscription.frequency == Frequency.IMMEDIATE:
        return latest.get(subscription.newsletter_id)
    return Schedule.of(subscription).last_at(settled(now))


def window_for(
    subscription: Subscription, *, end: datetime.datetime, published: list[datetime.datetime] | None = None
) -> Window:
    """Return the window (cursor, end]; a new subscription's starts where its first would have, had every run happened.

    That first window is one period back from the subscription's first send time, its
    `next_due_at` until it is planned (the first occurrence after it began; for an
    immediate one, the issue that woke it), and never after it began. Counting back from
    the window's end instead would lose the issues published in the day before the reader
    subscribed whenever the first run was missed; counting back only to when it began would
    give every reader who subscribed at another instant a window, and a rendering, of their own.

    With `published` (the newsletter's visible publish times, sorted) that start moves back
    to where the content changes (start_snapped): readers imported or subscribed at
    different instants then share one window, so one rendering, whatever their frequency.
    """
    if subscription.cursor is not None:
        return Window(subscription.newsletter_id, subscription.cursor, end)
    first_end = subscription.next_due_at or end
    start = min(subscription.created_at, first_end - PERIODS[subscription.frequency])
    if published:
        start = start_snapped(start, end=end, published=published)
    return Window(subscription.newsletter_id, start, end)


def start_snapped(
    start: datetime.datetime, *, end: datetime.datetime, published: list[datetime.datetime]
) -> datetime.datetime:
    """Return the earliest start that gives a window ending at `end` the same issues as `start` does.

    That is the latest publish time at or before `start` (the window holds issues published
    after it), or, with none, a second before the first issue. Many readers' different
    starts thus become one. digest.planning.plan_sql does the same in SQL.
    """
    before = bisect.bisect_right(published, start)
    if before:
        return published[before - 1]
    if published[0] <= end:
        return published[0] - SNAP_BEFORE_FIRST
    return start  # nothing visible by `end`: an empty window, whatever its start


# A new reader's window with no issue before its start begins this long before the first issue.
SNAP_BEFORE_FIRST = datetime.timedelta(seconds=1)


def issues_in(window: Window) -> list[int]:
    """Return the ids of published issues in the window, oldest first."""
    return list(
        issues_published_between(newsletter_id=window.newsletter_id, start=window.start, end=window.end).values_list(
            "id", flat=True
        )
    )
