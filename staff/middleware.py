"""With ADMIN_REQUIRE_2FA, staff see no admin page but the second factor's until a code confirms them."""

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode


class TwoFactorRequiredMiddleware:
    """Send staff whose session no code confirmed to the two-factor page (after django-otp's OTPMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.ADMIN_REQUIRE_2FA and self._needs_code(request):
            return redirect(f"{reverse('two_factor')}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    @staticmethod
    def _needs_code(request) -> bool:
        user = request.user
        if not (user.is_authenticated and user.is_staff) or user.is_verified():
            return False
        open_paths = {reverse("two_factor"), reverse("admin:logout"), reverse("admin:login"), reverse("admin:jsi18n")}
        return request.path.startswith(reverse("admin:index")) and request.path not in open_paths
