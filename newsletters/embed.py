"""The embeddable subscribe form: its cross-site endpoint, the challenge it asks for, its snippet.

A publisher pastes the snippet (shown on the newsletter's admin page) into any page. It
posts here without a CSRF token (nothing changes before the confirmation link is
followed, and the answer is the same whether or not the address is known): as a plain form,
answered with a redirect back to `next` on an origin the newsletter allows; or from a
script with `Accept: application/json`, answered in JSON with CORS headers for the
newsletter's allowed origins. This site's own issue and archive pages post here too.
"""

from urllib.parse import urlsplit

from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from newsletters.conf import site_url
from newsletters.exceptions import RateLimited, SignupRefused
from newsletters.firewall import CHALLENGE_FIELD, HONEYPOT_FIELD, challenge_make, challenge_required, signup_submit
from newsletters.forms import EmbedForm
from newsletters.languages import request_language
from newsletters.models import Newsletter, SignupRefusalReason
from newsletters.proxies import client_address
from newsletters.selectors import newsletters_public
from newsletters.validators import origins_parse

SENT_MESSAGE = gettext_lazy("Almost done: we sent you a link to confirm. Nothing is sent until you follow it.")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}" if parts.scheme and parts.netloc else ""


def embed_origins(newsletter: Newsletter | None) -> set[str]:
    """The origins whose pages may post a newsletter's form and read its answer: its list and this site."""
    allowed = {_origin(site_url())}
    if newsletter is not None:
        allowed |= set(origins_parse(newsletter.embed_origins))
    return allowed


def embed_snippet(newsletter: Newsletter) -> str:
    """The HTML a publisher pastes into a page of theirs to subscribe readers to `newsletter`."""
    origins = origins_parse(newsletter.embed_origins)
    context = {
        "newsletter": newsletter,
        "action": site_url(reverse("newsletters:embed_subscribe")),
        "challenge_url": site_url(reverse("newsletters:challenge")),
        "script_url": site_url("/static/newsletters/signup.js"),
        "next": (origins[0] + "/") if origins else "",
    }
    return render_to_string("newsletters/embed_snippet.html", context)


@require_GET
@never_cache
def challenge(request):
    """A fresh proof-of-work challenge for the signup script (any site may ask: it grants nothing)."""
    # "required" lets the script skip the work while no burst is on (phones thank it).
    response = JsonResponse(challenge_make(now=timezone.now()) | {"required": challenge_required()})
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _answer(
    request,
    *,
    newsletter,
    status: int,
    message: str,
    ok: bool = False,
    extra: dict | None = None,
    page_extra: dict | None = None,
):
    """Answer in JSON (with CORS for allowed origins) or as a page of this site with a link back.

    `extra` goes into both answers; `page_extra` only into the page's context.
    """
    origin = request.headers.get("Origin", "")
    allowed = embed_origins(newsletter)
    if _wants_json(request):
        response = JsonResponse({"ok": ok, "message": message} | (extra or {}), status=status)
    else:
        back = request.POST.get("next", "")
        context = {"ok": ok, "message": message, "back": back if _origin(back) in allowed else ""}
        context |= (extra or {}) | (page_extra or {})
        response = render(request, "newsletters/embed_result.html", context, status=status)
    if origin in allowed:
        response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    return response


@csrf_exempt  # Posted from publishers' pages, which have no token of ours; nothing changes before confirmation.
@require_http_methods(["POST", "OPTIONS"])
def embed_subscribe(request):
    """Ask for a subscription to one newsletter from an embedded form; the same answer for every address."""
    if request.method == "OPTIONS":
        return _preflight(request)
    form = EmbedForm(request.POST)
    slug = request.POST.get("newsletter", "")
    newsletter = newsletters_public().filter(slug=slug).first() if slug else None
    if newsletter is None:
        return _answer(request, newsletter=None, status=400, message=gettext("This newsletter does not exist."))
    if not form.is_valid():
        message = " ".join(error for errors in form.errors.values() for error in errors)
        return _answer(request, newsletter=newsletter, status=400, message=message, extra={"errors": form.errors})
    data = form.cleaned_data
    try:
        signup_submit(
            email=data["email"],
            name=data["name"],
            tz=data["timezone"],
            choices={newsletter.pk: data["frequency"]},
            data=request.POST,
            client=client_address(request.META),
            now=timezone.now(),
            language=request_language(request),
        )
    except RateLimited as error:
        return _answer(request, newsletter=newsletter, status=429, message=str(error))
    except SignupRefused as error:
        if error.reason == SignupRefusalReason.HONEYPOT:
            return _sent(request, newsletter)  # a bot learns nothing
        if error.reason == SignupRefusalReason.CHALLENGE:
            return _answer(
                request,
                newsletter=newsletter,
                status=400,
                message=str(error),
                extra={"challenge": reverse("newsletters:challenge")},
                page_extra={"resubmit": _resubmit(request), "email": data["email"], "newsletter": newsletter},
            )
        return _answer(request, newsletter=newsletter, status=400, message=str(error))
    return _sent(request, newsletter)


def _resubmit(request) -> list[tuple[str, str]]:
    """The posted fields to carry into the challenge page's form, less the honeypot and the old solution."""
    return [(k, v) for k, v in request.POST.items() if k not in (HONEYPOT_FIELD, CHALLENGE_FIELD)]


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _sent(request, newsletter):
    if _wants_json(request):
        return _answer(request, newsletter=newsletter, status=200, message=str(SENT_MESSAGE), ok=True)
    back = request.POST.get("next", "")
    if back and _origin(back) in embed_origins(newsletter):
        return redirect(back)
    return redirect("newsletters:subscribe_sent")


def _preflight(request):
    """CORS preflight: a script on an allowed origin may post JSON-accepting requests."""
    origin = request.headers.get("Origin", "")
    response = HttpResponse(status=204)
    allowed = set().union(*(embed_origins(n) for n in newsletters_public().exclude(embed_origins="")))
    if origin in allowed | embed_origins(None):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST"
        response["Access-Control-Allow-Headers"] = "Accept, Content-Type"
        response["Access-Control-Max-Age"] = "86400"
    response["Vary"] = "Origin"
    return response
