"""Two-factor sign-in for staff: enrolling an authenticator app, logging in with its code, requiring it."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


def totp(secret_base32: str, *, at: float | None = None, step: int = 30) -> str:
    """The 6-digit code an authenticator app shows for a key (RFC 6238, SHA-1), computed here."""
    key = base64.b32decode(secret_base32.replace(" ", ""))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{code % 1_000_000:06d}"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("eda", password="pw-long-enough", is_staff=True)


def _enrol(client) -> str:
    """Open the two-factor page, read the key it shows, confirm it with a code; return the key."""
    page = client.get(reverse("two_factor"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "two-factor-qr" in html and "<svg" in html  # the QR code, drawn on the page
    secret = re.search(r'<code class="two-factor-key">([A-Z2-7 ]+)</code>', html).group(1)
    response = client.post(reverse("two_factor"), {"otp_token": totp(secret)})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    return secret


def _login(client, **extra):
    return client.post(reverse("admin:login"), {"username": "eda", "password": "pw-long-enough", **extra})


def test_enrolling_then_every_login_needs_the_apps_code(client, staff):
    client.force_login(staff)
    secret = _enrol(client)
    assert TOTPDevice.objects.get(user=staff).confirmed
    client.logout()

    response = _login(client)
    assert response.status_code == 200 and "Enter the 6-digit code" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The app's next code (one step ahead is allowed) logs in, and is verified for the session.
    assert _login(client, otp_token=totp(secret, at=time.time() + 30)).status_code == 302
    assert client.get(reverse("admin:index")).context["user"].is_verified()
    client.logout()

    # A code works once; after a wrong one the next try must wait.
    response = _login(client, otp_token=totp(secret, at=time.time() + 30))
    assert "That code is wrong" in response.content.decode() and "_auth_user_id" not in client.session
    response = _login(client, otp_token="000000" if totp(secret) != "000000" else "111111")
    assert "Too many wrong codes" in response.content.decode() and "_auth_user_id" not in client.session


def test_a_wrong_code_does_not_enrol(client, staff):
    client.force_login(staff)
    html = client.get(reverse("two_factor")).content.decode()
    secret = re.search(r'<code class="two-factor-key">([A-Z2-7 ]+)</code>', html).group(1)
    wrong = totp(secret, at=time.time() - 3600)
    response = client.post(reverse("two_factor"), {"otp_token": wrong})
    assert response.status_code == 200 and "That code is wrong" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff, confirmed=True).exists()
    # A user who never enrolled logs in with the password alone.
    client.logout()
    assert _login(client).status_code == 302


def test_required_two_factor_keeps_staff_on_the_enrolment_page(client, staff, settings):
    settings.ADMIN_REQUIRE_2FA = True
    client.force_login(staff)
    for url in [reverse("admin:index"), reverse("admin:newsletters_issue_changelist"), reverse("dashboard")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("two_factor") + "?next=")
    _enrol(client)
    assert client.get(reverse("admin:index")).status_code == 200


def test_required_two_factor_asks_an_enrolled_user_unverified_session_for_a_code(client, staff, settings):
    client.force_login(staff)
    secret = _enrol(client)
    settings.ADMIN_REQUIRE_2FA = True
    client.logout()
    client.force_login(staff)  # a session no code confirmed
    changelist = reverse("admin:newsletters_issue_changelist")
    response = client.get(changelist)
    assert response.status_code == 302
    assert "two-factor-key" not in client.get(response["Location"]).content.decode()  # no new key is shown
    code = totp(secret, at=time.time() + 30)  # the enrolling code cannot be used twice
    response = client.post(reverse("two_factor"), {"otp_token": code, "next": changelist})
    assert response["Location"] == changelist


def test_the_next_address_stays_on_this_site(client, staff):
    client.force_login(staff)
    html = client.get(reverse("two_factor")).content.decode()
    secret = re.search(r'<code class="two-factor-key">([A-Z2-7 ]+)</code>', html).group(1)
    response = client.post(reverse("two_factor"), {"otp_token": totp(secret), "next": "https://evil.example/"})
    assert response["Location"] == reverse("admin:index")


def test_readers_never_see_the_two_factor_page(client):
    assert "/admin/login/" in client.get(reverse("two_factor"))["Location"]
