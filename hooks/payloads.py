"""What each event's `data` holds: plain JSON built from the models, one function per thing named.

Every body is `{"type": …, "timestamp": …, "data": {…}}` (the Standard Webhooks shape);
docs/operating/webhooks.md shows one of each type.
"""

from newsletters.conf import site_url
from newsletters.models import Issue, Newsletter, Subscriber, Subscription


def _when(moment) -> str | None:
    return moment.isoformat() if moment else None


def newsletter_data(newsletter: Newsletter) -> dict:
    return {"id": newsletter.pk, "slug": newsletter.slug, "name": newsletter.name}


def subscriber_data(subscriber: Subscriber) -> dict:
    return {
        "id": subscriber.pk,
        "email": subscriber.email,
        "name": subscriber.name,
        "timezone": subscriber.timezone,
        "status": subscriber.status,
        "confirmed_at": _when(subscriber.confirmed_at),
    }


def subscription_data(subscription: Subscription) -> dict:
    return {
        "id": subscription.pk,
        "newsletter": newsletter_data(subscription.newsletter),
        "frequency": subscription.frequency,
        "status": subscription.status,
        "unsubscribed_at": _when(subscription.unsubscribed_at),
    }


def issue_data(issue: Issue) -> dict:
    return {
        "id": issue.pk,
        "newsletter": newsletter_data(issue.newsletter),
        "title": issue.title,
        "slug": issue.slug,
        "publish_at": _when(issue.publish_at),
        "url": site_url(issue.get_absolute_url()),
    }


def bounce_data(bounce) -> dict:
    """A digest.models.BounceEvent: what came back and what the bounce policy did."""
    return {
        "id": bounce.pk,
        "kind": bounce.kind,
        "action": bounce.action,
        "source": bounce.source,
        "status": bounce.status,
        "diagnostic": bounce.diagnostic,
        "occurred_at": _when(bounce.occurred_at),
        "delivery_id": bounce.delivery_id,
    }


def run_data(run) -> dict:
    """A digest.models.Run: when it ran, for which newsletter (all: ""), and its counts."""
    return {
        "id": run.pk,
        "now": _when(run.now),
        "started_at": _when(run.started_at),
        "finished_at": _when(run.finished_at),
        "newsletter": run.newsletter,
        "summary": run.summary,
    }
