"""Reader pages for their own data: download it as JSON, ask to be deleted, confirm the deletion."""

import datetime
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from newsletters.languages import reader_activate
from newsletters.models import Subscriber
from newsletters.privacy import (
    ERASE_LINK_DAYS,
    address_hash,
    subscriber_erase,
    subscriber_erase_request,
    subscriber_export,
)
from newsletters.tokens import TokenExpired, TokenInvalid, token_read


def _link_error(request, error: TokenInvalid):
    expired = isinstance(error, TokenExpired)
    context = {"erase_expired": expired, "erase_days": ERASE_LINK_DAYS}
    return render(request, "newsletters/link_error.html", context, status=410 if expired else 400)


def _reader(token: str) -> Subscriber:
    """The reader of a preferences link, whose language the page is in; raise TokenInvalid or Http404."""
    subscriber = get_object_or_404(Subscriber, pk=token_read(token, purpose="preferences", kind=int))
    reader_activate(reader=subscriber.language)
    return subscriber


@require_GET
def data(request, token):
    """Everything held about the reader of a preferences link, as a JSON download."""
    try:
        subscriber = _reader(token)
    except TokenInvalid as error:
        return _link_error(request, error)
    body = json.dumps(subscriber_export(subscriber=subscriber), cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-newsletter-data.json"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def erase_request(request, token):
    """From the preferences page: mail the reader a link that deletes them."""
    try:
        subscriber = _reader(token)
    except TokenInvalid as error:
        return _link_error(request, error)
    subscriber_erase_request(subscriber=subscriber, now=timezone.now())
    return render(request, "newsletters/erase.html", {"sent": True, "email": subscriber.email})


@require_http_methods(["GET", "POST"])
def erase(request, token):
    """GET shows what will happen with one button (link scanners only GET); POST deletes."""
    try:
        value = token_read(token, purpose="erase", kind=dict, max_age=datetime.timedelta(days=ERASE_LINK_DAYS))
        subscriber = Subscriber.objects.filter(pk=value.get("s")).first() if isinstance(value.get("s"), int) else None
        if subscriber is None or address_hash(subscriber.email)[:16] != value.get("h"):
            raise TokenInvalid("erase")  # already deleted, or another reader's
    except TokenInvalid as error:
        return _link_error(request, error)
    if request.method == "POST":
        subscriber_erase(subscriber=subscriber, now=timezone.now())
        return render(request, "newsletters/erase.html", {"done": True})
    return render(request, "newsletters/erase.html", {"email": subscriber.email})
