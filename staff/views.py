"""The page where a staff user sets up, or confirms, the second factor."""

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login

from staff.forms import TokenForm
from staff.twofactor import totp_device_of, totp_enrolment_start, totp_qr_svg, totp_secret, totp_token_refusal


@never_cache
def two_factor(request):
    """Enrol an authenticator app (QR code, then a code to confirm it), or confirm this session with a code."""
    user = request.user
    enrolled = totp_device_of(user)
    device = enrolled or totp_enrolment_start(user)
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    form = TokenForm(request.POST or None)
    if form.is_valid():
        refusal = totp_token_refusal(device, form.cleaned_data["otp_token"])
        if refusal is None:
            if not enrolled:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                messages.success(request, "Two-factor sign-in is on: you will be asked for a code at every login.")
            otp_login(request, device)
            return redirect(target or reverse("admin:index"))
        form.add_error("otp_token", refusal)
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor sign-in",
        "enrolled": enrolled is not None,
        "verified": user.is_verified(),
        "form": form,
        "next": target,
    }
    if enrolled is None:
        context.update(qr_svg=totp_qr_svg(device), secret=totp_secret(device))
    return TemplateResponse(request, "admin/staff/two_factor.html", context)
