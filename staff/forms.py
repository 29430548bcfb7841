"""The admin's login form with a second factor, and the form that confirms a code."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from staff.twofactor import totp_device_of, totp_token_refusal

_TOKEN_WIDGET = forms.TextInput(
    attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9 ]*", "size": 8}
)


class StaffLoginForm(AdminAuthenticationForm):
    """Username and password, plus the authenticator app's code for users who enrolled one."""

    otp_token = forms.CharField(
        label="Code from your authenticator app",
        required=False,
        max_length=10,
        widget=_TOKEN_WIDGET,
        help_text="Only if you set up two-factor sign-in.",
    )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        device = totp_device_of(user) if user is not None else None
        if device is not None:
            token = cleaned.get("otp_token", "")
            if not token:
                raise forms.ValidationError(
                    "Enter the 6-digit code from your authenticator app.", code="token_required"
                )
            if refusal := totp_token_refusal(device, token):
                raise forms.ValidationError(refusal, code="invalid_token")
            # django-otp marks the session verified when it sees this at login.
            user.otp_device = device
        return cleaned


class TokenForm(forms.Form):
    otp_token = forms.CharField(label="6-digit code", max_length=10, widget=_TOKEN_WIDGET)
