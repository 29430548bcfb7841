"""The desk's own pages under admin/ (project/urls.py): the dashboard, the one click that resumes a
newsletter its circuit breaker paused (digest.breaker), and the deliverability check."""

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from digest.breaker import breaker_paused, newsletter_resume
from digest.deliverability.report import deliverability_check
from digest.desk import dashboard as board
from digest.desk.charts import Series, bar_chart, line_chart
from digest.desk.providers import deliveries_by_provider
from newsletters.models import Newsletter
from project.clock import db_now


@require_POST
def breaker_resume(request, pk: int):
    """Resume sending of a paused newsletter (POST, CSRF, staff who may change newsletters), noting who did."""
    if not request.user.has_perm("newsletters.change_newsletter"):
        raise PermissionDenied
    newsletter = get_object_or_404(Newsletter, pk=pk)
    if newsletter_resume(newsletter_id=newsletter.pk, by=request.user.get_username(), now=db_now()):
        messages.success(request, f"Sending of {newsletter.name} resumed: its waiting digests go out in the next run.")
    else:
        messages.info(request, f"{newsletter.name} was not paused.")
    return redirect("dashboard")


def _status_chart(title: str, counts, names: list[str]):
    """One bar per name, each in its own colour, from a Counter."""
    return bar_chart(
        title=title,
        labels=names,
        series=[Series(name, [counts[name] if other == name else 0 for other in names]) for name in names],
    )


def dashboard(request):
    """The editors' desk: readers, growth, digests per day, last runs and what is due, overall or per newsletter."""
    if not request.user.has_perms(["newsletters.view_subscription", "digest.view_delivery"]):
        raise PermissionDenied
    newsletters = list(Newsletter.objects.order_by("name"))
    chosen = next((n for n in newsletters if str(n.pk) == request.GET.get("newsletter")), None)
    newsletter_id = chosen.pk if chosen else None
    days = int(request.GET["days"]) if request.GET.get("days") in {str(d) for d in board.RANGES} else 30
    now = timezone.now()
    counts = board.subscriptions_counted(newsletter_id=newsletter_id)
    readers = board.readers_count(newsletter_id=newsletter_id, counts=counts)
    growth = board.readers_timeline(days=days, now=now, newsletter_id=newsletter_id)
    sent = board.deliveries_timeline(days=days, now=now, newsletter_id=newsletter_id)
    due = board.due_next_days(now=now, newsletter_id=newsletter_id, counts=counts)
    per = "week" if growth.by_week else "day"
    context = {
        **admin.site.each_context(request),
        "title": f"Dashboard: {chosen.name}" if chosen else "Dashboard",
        "newsletters": newsletters,
        "chosen": chosen,
        "days": days,
        "ranges": board.RANGES.items(),
        "readers": readers,
        "status_chart": _status_chart("Readers by status", readers.by_status, board.READER_STATUSES),
        "frequency_chart": _status_chart(
            "Active readers by frequency", readers.by_frequency, [f.value for f in board.FREQUENCIES]
        ),
        "growth_chart": line_chart(
            title=f"Readers per {per}: subscribed, confirmed, unsubscribed",
            labels=growth.labels,
            series=[Series(name, values) for name, values in growth.series.items()],
        ),
        "deliveries_chart": bar_chart(
            title=f"Digests per {per} by outcome",
            labels=sent.labels,
            series=[Series(name, values) for name, values in sent.series.items()],
        ),
        "due_chart": bar_chart(
            title="Readers due a digest in the next 7 days, per frequency",
            labels=due.labels,
            series=[Series(name, values) for name, values in due.series.items()],
        ),
        "due": due,
        "per": per,
        "runs": board.runs_recent(),
        "providers": deliveries_by_provider(days=days, now=now, newsletter_id=newsletter_id),
        "paused": breaker_paused(now=db_now(), newsletter_ids=[newsletter_id] if chosen else None),
        "can_resume": request.user.has_perm("newsletters.change_newsletter"),
    }
    return TemplateResponse(request, "admin/digest/dashboard.html", context)


def deliverability(request):
    """The deliverability check, run now: findings per From domain, each with the record to publish."""
    if not request.user.has_perm("digest.view_delivery"):
        raise PermissionDenied
    try:
        report, problem = deliverability_check(), ""
    except ImproperlyConfigured as error:
        report, problem = None, str(error)
    context = {**admin.site.each_context(request), "title": "Deliverability", "report": report, "problem": problem}
    return TemplateResponse(request, "admin/digest/deliverability.html", context)
