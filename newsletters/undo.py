"""After unsubscribing: undo it for UNDO_DAYS days, or join the other newsletters.

The unsubscribed page carries a signed undo link (purpose "undo": the reader and the
subscriptions just stopped) and, for each newsletter the reader does not get, a button that
posts to their preferences link: both prove the address, as the preferences page does, so
neither sends a confirmation mail. GET only shows a button (link scanners follow links).
"""

import datetime

from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from newsletters.models import Subscriber, SubscriberStatus, SubscriptionStatus
from newsletters.selectors import newsletters_public
from newsletters.services import subscription_join, subscriptions_undo_unsubscribe
from newsletters.tokens import TokenExpired, TokenInvalid, token_make, token_read, undo_url

UNDO_DAYS = 30


def unsubscribed_context(*, subscriber: Subscriber, subscription_ids: list[int]) -> dict:
    """What the unsubscribed page offers: the undo link and the newsletters the reader does not get."""
    getting = subscriber.subscriptions.filter(status=SubscriptionStatus.ACTIVE).values("newsletter_id")
    return {
        "undo_url": undo_url(subscriber.pk, subscription_ids),
        "undo_days": UNDO_DAYS,
        "others": list(newsletters_public().exclude(pk__in=getting).exclude(subscriptions__pk__in=subscription_ids)),
        "join_token": token_make(purpose="preferences", value=subscriber.pk),
        "can_join": subscriber.status != SubscriberStatus.SUPPRESSED,
    }


def _undo_error(request, error: TokenInvalid):
    expired = isinstance(error, TokenExpired)
    context = {"undo_expired": expired, "undo_days": UNDO_DAYS}
    return render(request, "newsletters/link_error.html", context, status=410 if expired else 400)


@require_http_methods(["GET", "POST"])
def undo(request, token):
    """GET shows what comes back with one button; POST turns the subscriptions back on."""
    try:
        value = token_read(token, purpose="undo", kind=dict, max_age=datetime.timedelta(days=UNDO_DAYS))
        subscriber_id, ids = value["s"], value["ids"]
        if not isinstance(subscriber_id, int) or not all(isinstance(i, int) for i in ids):
            raise TokenInvalid("undo")
    except (TokenInvalid, KeyError, TypeError) as error:
        return _undo_error(request, error if isinstance(error, TokenInvalid) else TokenInvalid("undo"))
    subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
    subscriptions = list(subscriber.subscriptions.filter(pk__in=ids).select_related("newsletter"))
    resumed = None
    if request.method == "POST":
        resumed = subscriptions_undo_unsubscribe(subscriber=subscriber, subscription_ids=ids, now=timezone.now())
    context = {
        "subscriptions": subscriptions,
        "resumed": resumed,
        "suppressed": subscriber.status == SubscriberStatus.SUPPRESSED,
    }
    return render(request, "newsletters/undo.html", context)


@require_POST
def join(request, token):
    """Subscribe the reader of a preferences link to one more newsletter, weekly."""
    try:
        subscriber = get_object_or_404(Subscriber, pk=token_read(token, purpose="preferences", kind=int))
    except TokenInvalid:
        return _undo_error(request, TokenInvalid("preferences"))
    chosen = request.POST.get("newsletter", "")
    if not chosen.isascii() or not chosen.isdigit():
        return HttpResponseBadRequest("Expected a newsletter id.\n", content_type="text/plain")
    newsletter = get_object_or_404(newsletters_public(), pk=chosen)
    joined = subscription_join(subscriber=subscriber, newsletter=newsletter, now=timezone.now())
    context = {
        "newsletter": newsletter,
        "joined": joined,
        "suppressed": subscriber.status == SubscriberStatus.SUPPRESSED,
        "preferences_token": token,
    }
    return render(request, "newsletters/joined.html", context)
