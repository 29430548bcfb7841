"""What goes in each digest: windows from the cursor to the period end, grouped, planned as Deliveries.

A due subscription's window is (cursor, end]: `end` is the latest send-time occurrence
that has settled (daily, weekly) or the newest visible issue's publish time (immediate),
so however many runs were missed, one digest covers the whole gap. A new subscription's
window starts one period before its first send time (or when it began, if earlier). Subscriptions sharing
(newsletter, window) form a group, rendered once. Empty windows create no Delivery: the
cursor advances at once.
"""

import bisect
import datetime
import secrets
from collections import Counter

from django.db import connection, transaction
from django.utils.crypto import salted_hmac

from digest.conf import digest_settings
from digest.models import Delivery, Installation, Window
from digest.planning.due import publish_times, settled, subscriptions_due
from newsletters.conf import site_domain
from newsletters.models import Frequency, Subscription
from newsletters.schedules import PERIODS, occurrence_last, schedule_of, subscription_next_due
from newsletters.selectors import issues_published_between


def window_end(
    subscription: Subscription, *, now: datetime.datetime, latest: dict[int, datetime.datetime]
) -> datetime.datetime | None:
    """Return where this subscription's next window ends, or None if nothing can be closed yet."""
    if subscription.frequency == Frequency.IMMEDIATE:
        return latest.get(subscription.newsletter_id)
    return occurrence_last(at=settled(now), **schedule_of(subscription))


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


def issues_in(window: Window) -> list[int]:
    """Return the ids of published issues in the window, oldest first."""
    return list(
        issues_published_between(newsletter_id=window.newsletter_id, start=window.start, end=window.end).values_list(
            "id", flat=True
        )
    )


def deliveries_plan(*, now: datetime.datetime, newsletter_ids: list[int] | None = None, progress=None) -> Counter:
    """Turn every due subscription into a pending Delivery, or advance it past an empty window.

    Works in chunks of DIGEST_PLAN_CHUNK, each in one transaction; on PostgreSQL the chunk's
    rows are locked with SKIP LOCKED so concurrent runs plan disjoint sets, and each chunk
    is one set-based statement (digest.planning.plan_sql). Returns counts: due, planned, empty, groups.
    """
    if connection.vendor == "postgresql":
        from digest.planning.plan_sql import deliveries_plan_sql

        return deliveries_plan_sql(now=now, newsletter_ids=newsletter_ids, progress=progress)
    return deliveries_plan_python(now=now, newsletter_ids=newsletter_ids, progress=progress)


def deliveries_plan_python(
    *, now: datetime.datetime, newsletter_ids: list[int] | None = None, progress=None
) -> Counter:
    """Plan with model instances, a chunk at a time: SQLite's path, and the reference for the SQL one."""
    counts: Counter = Counter()
    published = publish_times(now=now, newsletter_ids=newsletter_ids)
    latest = {newsletter_id: times[-1] for newsletter_id, times in published.items()}
    installation = installation_key()
    contents: dict[Window, bool] = {}
    last_id = 0
    while True:
        with transaction.atomic():
            chunk = subscriptions_due(now=now, newsletter_ids=newsletter_ids).filter(id__gt=last_id)
            if connection.features.has_select_for_update_skip_locked:
                chunk = chunk.select_for_update(skip_locked=True, of=("self",))
            chunk = list(chunk[: digest_settings.PLAN_CHUNK])
            if not chunk:
                break
            last_id = chunk[-1].id
            _plan_chunk(
                chunk,
                now=now,
                latest=latest,
                published=published,
                installation=installation,
                contents=contents,
                counts=counts,
            )
        if progress:
            progress(f"planned {counts['due']} due subscriptions: {counts['planned']} digests, {counts['empty']} empty")
    counts["groups"] = sum(1 for has_issues in contents.values() if has_issues)
    return counts


def _plan_chunk(
    chunk, *, now, latest, published, installation: str, contents: dict[Window, bool], counts: Counter
) -> None:
    deliveries, advanced = [], []
    for subscription in chunk:
        counts["due"] += 1
        end = window_end(subscription, now=now, latest=latest)
        if end is None or (subscription.cursor and end <= subscription.cursor):
            # Nothing new can be closed yet (e.g. the reader moved to a later time zone):
            # wait for the next occurrence, keep the cursor.
            subscription.next_due_at = subscription_next_due(subscription, after=settled(now))
            advanced.append(subscription)
            counts["empty"] += 1
            continue
        window = window_for(subscription, end=end, published=published.get(subscription.newsletter_id))
        if window not in contents:
            contents[window] = bool(issues_in(window))
        if contents[window]:
            deliveries.append(
                Delivery(
                    subscription=subscription,
                    newsletter_id=window.newsletter_id,
                    window_start=window.start,
                    window_end=window.end,
                    message_id=message_id_for(subscription.id, window.end, installation=installation),
                    next_attempt_at=now,
                )
            )
            counts["planned"] += 1
        else:
            subscription.cursor = window.end
            subscription.next_due_at = subscription_next_due(subscription, after=window.end)
            advanced.append(subscription)
            counts["empty"] += 1
    # Ids follow groups, so a claimed batch (taken in id order) spans few groups.
    deliveries.sort(key=lambda d: (d.window_end, d.window_start))
    # ignore_conflicts: the unique constraints are the last guard against a second plan
    # of the same window or a second open digest for one subscription.
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    Subscription.objects.bulk_update(advanced, ["cursor", "next_due_at"])
