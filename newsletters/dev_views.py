"""DEBUG-only pages that show what the local capture server received."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render

from newsletters.devmail import outbox_list, outbox_read


def _debug_only():
    if not settings.DEBUG:
        raise Http404("The outbox exists only with DEBUG on.")


def outbox(request):
    """List captured messages, newest first."""
    _debug_only()
    return render(request, "newsletters/dev/outbox.html", {"messages_": outbox_list(settings.LOCAL_MAIL_DIR)})


def outbox_message(request, name):
    """Show one captured message: headers, HTML and text parts, attachments."""
    _debug_only()
    try:
        stored = outbox_read(settings.LOCAL_MAIL_DIR, name)
    except FileNotFoundError:
        raise Http404("No such message.") from None
    context = {
        "stored": stored,
        "headers": list(stored.message.items()),
        "html": stored.part("html"),
        "text": stored.part("plain"),
    }
    return render(request, "newsletters/dev/message.html", context)
