"""What goes in each digest: windows from the cursor to the period end, grouped, planned as Deliveries.

A due subscription's window is (cursor, end]: `end` is the latest send-time occurrence
that has settled (daily, weekly) or the newest visible issue's publish time (immediate),
so however many runs were missed, one digest covers the whole gap. A new subscription's
window starts one period before its first send time (or when it began, if earlier). Subscriptions sharing
(newsletter, window) form a group, rendered once. Empty windows create no Delivery: the
cursor advances at once.
"""

import datetime
from collections import Counter

from django.db import connection, transaction

from digest.conf import digest_settings
from digest.models import Delivery, Window
from digest.planning.due import publish_times, settled, subscriptions_due
from digest.planning.message_ids import installation_key, message_id_for
from digest.planning.plan_sql import deliveries_plan_sql
from digest.planning.windows import issues_in, window_end, window_for
from newsletters.models import Subscription
from newsletters.schedules import subscription_next_due


def deliveries_plan(*, now: datetime.datetime, newsletter_ids: list[int] | None = None, progress=None) -> Counter:
    """Turn every due subscription into a pending Delivery, or advance it past an empty window.

    Works in chunks of DIGEST_PLAN_CHUNK, each in one transaction; on PostgreSQL the chunk's
    rows are locked with SKIP LOCKED so concurrent runs plan disjoint sets, and each chunk
    is one set-based statement (digest.planning.plan_sql). Returns counts: due, planned, empty, groups.
    """
    if connection.vendor == "postgresql":
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
