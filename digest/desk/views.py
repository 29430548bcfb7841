"""The one click that resumes a newsletter its circuit breaker paused (digest.breaker), from the dashboard."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from digest.breaker import newsletter_resume
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
