"""Invitations planned: one letter of kind "invitation" per subscription an admin import in "invite" mode named.

The import (newsletters.subscriber_imports) announces itself with the subscribers_imported
signal; this plans the letters, and every send task sends them after the digests, at the
engine's pace (digest.sending.letters). A letter is unique per (subscription, kind, step), so
an import run again, or a second import naming the same reader, invites nobody twice; a
reader already active, or one who left or bounced, is not invited.
"""

import datetime

from digest.models import Letter, LetterKind
from newsletters.models import SubscriberImport, SubscriberStatus, SubscriptionStatus

# Letters written per INSERT.
BATCH = 5000


def invitations_plan(*, subscriber_import: SubscriberImport, now: datetime.datetime) -> int:
    """Plan an invitation for each pending subscription of a pending reader the import named; return how many."""
    waiting = (
        subscriber_import.subscriptions.filter(
            status=SubscriptionStatus.PENDING, subscriber__status=SubscriberStatus.PENDING
        )
        .exclude(letters__kind=LetterKind.INVITATION)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    ids = list(waiting)
    for start in range(0, len(ids), BATCH):
        Letter.objects.bulk_create(
            [
                Letter(kind=LetterKind.INVITATION, subscription_id=pk, step=0, due_at=now)
                for pk in ids[start : start + BATCH]
            ],
            ignore_conflicts=True,  # planned meanwhile by a concurrent run of the same import
        )
    return len(ids)


def invitations_on_import(sender, *, subscriber_import: SubscriberImport, now: datetime.datetime, **kwargs) -> int:
    """Answer newsletters.signals.subscribers_imported: plan the import's invitations."""
    return invitations_plan(subscriber_import=subscriber_import, now=now)
