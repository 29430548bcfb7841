"""Reader pages: newsletters and archives, subscribe and confirm, preferences, unsubscribe, feeds.

Links in emails carry signed tokens (newsletters.tokens); a bad one gets 400, an expired
or already used one 410, and no page says whether an address is subscribed.
"""

import datetime
import io
import logging

from django.contrib.syndication.views import Feed
from django.core.paginator import InvalidPage, Paginator
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from newsletters.conf import newsletters_settings, site_domain, site_url
from newsletters.exceptions import ConfirmationReplayed, MarkupError, RateLimited, SignupRefused
from newsletters.firewall import signup_submit
from newsletters.forms import PreferencesForm, SubscribeForm
from newsletters.languages import reader_activate, request_language
from newsletters.markup import html_excerpt, markdown_to_html
from newsletters.models import (
    Frequency,
    SignupRefusalReason,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletters.proxies import client_address
from newsletters.schedules import Schedule
from newsletters.selectors import issues_visible, newsletters_public
from newsletters.services import (
    PreferenceChange,
    confirmation_used,
    link_used,
    preferences_update,
    subscriber_unsubscribe_all,
    subscription_confirm,
    subscription_keep,
    subscription_set_frequency,
    subscription_unsubscribe,
)
from newsletters.tokens import TokenExpired, TokenInvalid, preferences_url, token_read
from newsletters.undo import unsubscribed_context

logger = logging.getLogger(__name__)


def home(request):
    """List the newsletters a reader can follow, with the subscribe form."""
    newsletters = list(newsletters_public())
    return render(
        request, "newsletters/home.html", {"newsletters": newsletters, "form": SubscribeForm(newsletters=newsletters)}
    )


ARCHIVE_PER_PAGE = 20


def archive(request, slug):
    """List a newsletter's published issues, newest first, a page at a time (`?page=N`)."""
    newsletter = get_object_or_404(newsletters_public(), slug=slug)
    # The list shows no bodies: do not read them.
    issues = issues_visible(newsletter=newsletter, now=timezone.now()).only("newsletter", "title", "slug", "publish_at")
    number = request.GET.get("page", "1")
    # Only plain ASCII digits: int() would also take " 2", "+2", "1_0" and other scripts' digits,
    # so the same page would answer at many addresses.
    if not number.isascii() or not number.isdigit():
        raise Http404("No such page.")
    try:
        page = Paginator(issues, ARCHIVE_PER_PAGE).page(number)
    except InvalidPage:
        raise Http404("No such page.") from None
    path = newsletter.get_absolute_url() + (f"?page={page.number}" if page.number > 1 else "")
    share = _share(
        title=newsletter.name,
        description=newsletter.description or gettext("The archive of %(name)s.") % {"name": newsletter.name},
        path=path,
        kind="website",
    )
    return render(request, "newsletters/archive.html", {"newsletter": newsletter, "page": page, "share": share})


SHARE_DESCRIPTION_LENGTH = 160


def _share(*, title: str, description: str, path: str, kind: str, published=None) -> dict:
    """What a page's description, canonical link, Open Graph and Twitter tags say."""
    description = " ".join(description.split())
    if len(description) > SHARE_DESCRIPTION_LENGTH:
        description = description[: SHARE_DESCRIPTION_LENGTH - 1].rsplit(" ", 1)[0] + "…"
    return {
        "title": title,
        "description": description,
        "url": site_url(path),
        "type": kind,
        "site_name": site_domain(),
        "published": published,
    }


def issue_detail(request, slug, issue_slug):
    """Show one published issue as readers get it."""
    newsletter = get_object_or_404(newsletters_public(), slug=slug)
    issue = get_object_or_404(issues_visible(newsletter=newsletter, now=timezone.now()), slug=issue_slug)
    context = {"newsletter": newsletter, "issue": issue}
    try:
        context["body_html"] = markdown_to_html(issue.body)
    except MarkupError as error:
        # The page still answers (title, date, files); the editor fixes the text in the admin.
        logger.error("Issue %s of %s cannot be shown: %s", issue.pk, newsletter.slug, error)
        context["markup_error"] = True
    excerpt = issue.preheader or html_excerpt(context.get("body_html", ""), length=SHARE_DESCRIPTION_LENGTH + 1)
    context["share"] = _share(
        title=issue.title,
        description=excerpt or newsletter.description or newsletter.name,
        path=issue.get_absolute_url(),
        kind="article",
        published=issue.publish_at,
    )
    return render(request, "newsletters/issue.html", context)


class _BufferedAtom1Feed(Atom1Feed):
    """Atom, written to the response in one piece: the XML writer's thousand small writes
    straight into an HttpResponse cost more than building the whole feed."""

    def write(self, outfile, encoding):
        buffer = io.StringIO()
        super().write(buffer, encoding)
        outfile.write(buffer.getvalue())


class NewsletterFeed(Feed):
    """Atom feed of a newsletter's published issues."""

    feed_type = _BufferedAtom1Feed

    def get_object(self, request, slug):
        return get_object_or_404(newsletters_public(), slug=slug)

    def title(self, newsletter):
        return newsletter.name

    def subtitle(self, newsletter):
        return newsletter.description

    def link(self, newsletter):
        return newsletter.get_absolute_url()

    def items(self, newsletter):
        """The latest 30 issues, less any whose text cannot be rendered (logged): one never breaks the feed."""
        shown = []
        for issue in issues_visible(newsletter=newsletter, now=timezone.now())[:30]:
            try:
                markdown_to_html(issue.body)  # cached: item_description gets it again for free
            except MarkupError as error:
                logger.error("Issue %s of %s left out of the feed: %s", issue.pk, newsletter.slug, error)
                continue
            shown.append(issue)
        return shown

    def item_title(self, issue):
        return issue.title

    def item_description(self, issue):
        return markdown_to_html(issue.body)

    def item_pubdate(self, issue):
        return issue.publish_at

    def item_updateddate(self, issue):
        return issue.updated_at


def _link_error(request, error: Exception):
    if isinstance(error, TokenExpired):
        context = {"expired": True, "days": newsletters_settings.CONFIRM_MAX_AGE_DAYS}
        return render(request, "newsletters/link_error.html", context, status=410)
    if isinstance(error, ConfirmationReplayed):
        return render(request, "newsletters/link_error.html", {"replayed": True}, status=410)
    return render(request, "newsletters/link_error.html", {}, status=400)


@require_http_methods(["GET", "POST"])
def subscribe(request):
    """Ask for a subscription; the same answer whether or not the address is known."""
    newsletters = list(newsletters_public())
    form = SubscribeForm(request.POST or None, newsletters=newsletters)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "newsletters/subscribe.html", {"form": form}, status=400)
        try:
            signup_submit(
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                tz=form.cleaned_data["timezone"],
                choices=form.choices(),
                data=request.POST,
                client=client_address(request.META),
                now=timezone.now(),
                language=request_language(request),
            )
        except RateLimited:
            return render(request, "newsletters/rate_limited.html", status=429)
        except SignupRefused as error:
            if error.reason != SignupRefusalReason.HONEYPOT:  # a bot learns nothing
                form.add_error(None, str(error))
                return render(request, "newsletters/subscribe.html", {"form": form}, status=400)
        return redirect("newsletters:subscribe_sent")
    return render(request, "newsletters/subscribe.html", {"form": form})


def subscribe_sent(request):
    """Tell the reader to look for the confirmation mail."""
    return render(request, "newsletters/subscribe_sent.html")


@require_http_methods(["GET", "POST"])
def confirm(request, token):
    """GET shows the request with a button (link scanners only GET); POST activates it."""
    max_age = datetime.timedelta(days=newsletters_settings.CONFIRM_MAX_AGE_DAYS)
    try:
        payload = token_read(token, purpose="confirm", kind=dict, max_age=max_age)
        if confirmation_used(payload=payload):
            return _link_error(request, ConfirmationReplayed())
    except TokenInvalid as error:
        return _link_error(request, error)
    reader_activate(reader=str(payload.get("l", "")))
    if request.method == "GET":
        return render(request, "newsletters/confirm.html", {"email": payload["e"]})
    try:
        subscriber = subscription_confirm(token=token, now=timezone.now())
    except (TokenInvalid, ConfirmationReplayed) as error:
        return _link_error(request, error)
    return redirect(preferences_url(subscriber.pk) + "?welcome=1")


def _schedule_rows(subscriber: Subscriber, subscriptions: list[Subscription], *, now: datetime.datetime) -> list[dict]:
    """What each active subscription sends and when, in the reader's time zone (nothing if the reader is not active)."""
    if subscriber.status != SubscriberStatus.ACTIVE:
        return []
    rows = []
    for s in subscriptions:
        if s.status != SubscriptionStatus.ACTIVE:
            continue
        if s.frequency == Frequency.IMMEDIATE:
            when = None
        else:
            when = Schedule(
                s.frequency,
                s.newsletter.send_time,
                s.newsletter.weekly_day,
                subscriber.timezone,
                s.newsletter.monthly_day,
            ).next_after(now)
        rows.append({"subscription": s, "next": when})
    return rows


@require_http_methods(["GET", "POST"])
def preferences(request, token):
    """Change frequencies, pause, unsubscribe, time zone and name; no account needed."""
    try:
        subscriber = get_object_or_404(
            _with_newsletters_language(), pk=token_read(token, purpose="preferences", kind=int)
        )
    except TokenInvalid as error:
        return _link_error(request, error)
    reader_activate(reader=subscriber.language, newsletter=subscriber.newsletters_language or "")
    link_used(subscriber_id=subscriber.pk, now=timezone.now(), last=subscriber.last_link_at)
    form = PreferencesForm(request.POST or None, subscriber=subscriber)
    saved = False
    if request.method == "POST":
        if "unsubscribe_all" in request.POST:
            stopped = subscriber_unsubscribe_all(subscriber=subscriber, now=timezone.now())
            context = {"everything": True} | unsubscribed_context(subscriber=subscriber, subscription_ids=stopped)
            return render(request, "newsletters/unsubscribed.html", context)
        if not form.is_valid():
            context = {"form": form, "subscriber": subscriber, "token": token}
            return render(request, "newsletters/preferences.html", context, status=400)
        changes = [
            PreferenceChange(s.pk, form.cleaned_data[f"freq_{s.pk}"], form.cleaned_data[f"status_{s.pk}"])
            for s in form.subscriptions
        ]
        preferences_update(
            subscriber=subscriber,
            name=form.cleaned_data["name"],
            tz=form.cleaned_data["timezone"],
            changes=changes,
            now=timezone.now(),
            language=form.cleaned_data["language"],
        )
        subscriber.refresh_from_db()
        reader_activate(reader=subscriber.language, newsletter=subscriber.newsletters_language or "")
        form = PreferencesForm(subscriber=subscriber)
        saved = True
    context = {
        "form": form,
        "subscriber": subscriber,
        "token": token,
        "saved": saved,
        "welcome": "welcome" in request.GET,
        "schedule": _schedule_rows(subscriber, form.subscriptions, now=timezone.now()),
        "suppressed": subscriber.status == SubscriberStatus.SUPPRESSED,
        "stopped": subscriber.status == SubscriberStatus.UNSUBSCRIBED,
    }
    return render(request, "newsletters/preferences.html", context)


def _with_newsletters_language():
    """Readers with the language of their first newsletter: their pages' language when they chose none."""
    first = Subscription.objects.filter(subscriber=OuterRef("pk")).order_by("newsletter__name")
    return Subscriber.objects.annotate(newsletters_language=Subquery(first.values("newsletter__language")[:1]))


def _subscription_for(token) -> Subscription:
    return get_object_or_404(
        Subscription.objects.select_related("newsletter", "subscriber"),
        pk=token_read(token, purpose="unsubscribe", kind=int),
    )


@csrf_exempt  # RFC 8058: mail clients POST without cookies or CSRF tokens; the signed URL is the credential.
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """GET asks for confirmation (scanners follow links); POST unsubscribes at once (RFC 8058)."""
    try:
        subscription_id = token_read(token, purpose="unsubscribe", kind=int)
    except TokenInvalid as error:
        return _link_error(request, error)
    if request.method == "POST":
        # Some mail clients end the body with CRLF; RFC 8058 also allows multipart/form-data.
        if request.POST.get("List-Unsubscribe", "").strip() != "One-Click":
            return HttpResponseBadRequest("Expected the body List-Unsubscribe=One-Click.\n", content_type="text/plain")
        if not subscription_unsubscribe(subscription_id=subscription_id, now=timezone.now()):
            raise Http404("No such subscription.")
        if request.POST.get("from") != "page":
            # Mail providers post these by the thousand after a big digest: one query, a plain answer.
            return HttpResponse("Unsubscribed.\n", content_type="text/plain")
    subscription = get_object_or_404(
        Subscription.objects.select_related("newsletter", "subscriber"), pk=subscription_id
    )
    reader_activate(reader=subscription.subscriber.language, newsletter=subscription.newsletter.language)
    if request.method == "POST":
        context = {"subscription": subscription} | unsubscribed_context(
            subscriber=subscription.subscriber, subscription_ids=[subscription.pk]
        )
        return render(request, "newsletters/unsubscribed.html", context)
    context = {
        "subscription": subscription,
        "token": token,
        "can_go_weekly": subscription.frequency != Frequency.WEEKLY,
    }
    return render(request, "newsletters/unsubscribe.html", context)


@require_http_methods(["GET", "POST"])
def keep(request, token):
    """Answer "still want this?": GET asks (scanners follow links), POST keeps the newsletter coming."""
    try:
        subscription_id = token_read(token, purpose="keep", kind=int)
    except TokenInvalid as error:
        return _link_error(request, error)
    subscription = get_object_or_404(
        Subscription.objects.select_related("newsletter", "subscriber"), pk=subscription_id
    )
    reader_activate(reader=subscription.subscriber.language, newsletter=subscription.newsletter.language)
    kept = request.method == "POST" and subscription_keep(subscription_id=subscription_id, now=timezone.now())
    if kept:
        subscription.refresh_from_db()
    context = {
        "subscription": subscription,
        "kept": kept,
        "preferences_url": preferences_url(subscription.subscriber_id),
    }
    return render(request, "newsletters/keep.html", context)


@require_POST
def unsubscribe_to_weekly(request, token):
    """Offered on the unsubscribe page: keep the newsletter, but weekly."""
    try:
        subscription = _subscription_for(token)
    except TokenInvalid as error:
        return _link_error(request, error)
    reader_activate(reader=subscription.subscriber.language, newsletter=subscription.newsletter.language)
    if subscription.status == SubscriptionStatus.ACTIVE:
        subscription_set_frequency(subscription=subscription, frequency=Frequency.WEEKLY, now=timezone.now())
    return render(request, "newsletters/unsubscribed.html", {"subscription": subscription, "weekly": True})
