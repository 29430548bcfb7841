"""Letters for tests of reader mails: plan what is due and send it, as a run does, without the digests."""

import datetime

from django.utils import timezone

from digest.planning.letters import onboarding_plan, reconfirm_pause, reconfirm_plan
from digest.sending.letters import letters_send
from newsletters.models import Newsletter, Subscriber, SubscriberStatus, Subscription, SubscriptionStatus


def letters_deliver(now: datetime.datetime | None = None) -> dict:
    """Plan the due onboarding steps and re-confirmations at `now`, then send every due letter; return the counts."""
    now = now or timezone.now()
    reconfirm_pause(now=now)
    onboarding_plan(now=now)
    reconfirm_plan(now=now)
    return letters_send(claimant="tests", now=now)


def welcome_deliver(*, subscriber: Subscriber, newsletter: Newsletter, now: datetime.datetime) -> bool:
    """A reader joins the newsletter at `now` and is sent its welcome (onboarding step one); True if it went out."""
    Subscriber.objects.filter(pk=subscriber.pk).update(status=SubscriberStatus.ACTIVE)
    Subscription.objects.update_or_create(
        subscriber=subscriber,
        newsletter=newsletter,
        defaults={"status": SubscriptionStatus.ACTIVE, "joined_at": now},
    )
    return letters_deliver(now)["letters_sent"] == 1
