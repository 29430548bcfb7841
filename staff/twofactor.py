"""A second factor for staff: one TOTP device (an authenticator app) per user, through django-otp.

Optional by default: a user who enrolled gives a code at every login. With ADMIN_REQUIRE_2FA
every staff user must enrol before any other admin page opens.
"""

from base64 import b32encode

import segno
from django.contrib.auth.models import AbstractBaseUser
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "Authenticator app"


def totp_device_of(user: AbstractBaseUser, *, confirmed: bool | None = True) -> TOTPDevice | None:
    """Return the user's TOTP device (confirmed ones only unless `confirmed` is None)."""
    devices = TOTPDevice.objects.filter(user=user)
    if confirmed is not None:
        devices = devices.filter(confirmed=confirmed)
    return devices.order_by("id").first()


def totp_enrolment_start(user: AbstractBaseUser) -> TOTPDevice:
    """Return the user's unconfirmed device, making one with a new secret key if there is none."""
    return totp_device_of(user, confirmed=False) or TOTPDevice.objects.create(
        user=user, name=DEVICE_NAME, confirmed=False
    )


WRONG_CODE = "That code is wrong or has expired; wait for the next one and try again."


def totp_token_refusal(device: TOTPDevice, token: str) -> str | None:
    """Check a code against the device; return why it is refused, or None when it is right.

    A code works once; after each wrong one django-otp makes the next try wait twice as long.
    """
    allowed, why = device.verify_is_allowed()
    if not allowed:
        return f"Too many wrong codes: try again in a few seconds ({why.get('failure_count', 1)} failed)."
    return None if device.verify_token(token.strip().replace(" ", "")) else WRONG_CODE


def totp_secret(device: TOTPDevice) -> str:
    """The secret key in base32 groups of four, for typing into an app that cannot scan."""
    key = b32encode(device.bin_key).decode()
    return " ".join(key[start : start + 4] for start in range(0, len(key), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG QR code (made here: no image service sees the key)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff")
