"""Every ESP anymail supports, posted to without credentials or with malformed bodies: 4xx, never 500, no mail.

ADMINS are mailed for every 500 and every SuspiciousOperation logged as an error, so an
endpoint anyone can post to must answer these itself.
"""

import base64

import pytest
from anymail import urls as anymail_urls
from django.core import mail
from django.test import Client

from digest.models import BounceEvent
from newsletters.models import SubscriberStatus
from tests.digest.returns.mail import sent_delivery

pytestmark = [
    pytest.mark.django_db,
    # /anymail/sendinblue/ warns that it is Brevo's old name; these tests make warnings errors.
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailDeprecationWarning"),
]
SECRET = "esp:correct-horse-battery"
ENDPOINTS = sorted(
    f"/anymail/{pattern.pattern}"
    for pattern in anymail_urls.urlpatterns
    if getattr(pattern, "name", "") and pattern.name.endswith("_tracking_webhook")
)
BODIES = {
    "not JSON": (b"not json at all", "application/json"),
    "cut short": (b'{"event": "bounced", "recipient": ', "application/json"),
    "a list of numbers": (b"[1, 2, 3]", "application/json"),
    "null": (b"null", "application/json"),
    "a string": (b'"x"', "application/json"),
    "wrong types": (
        b'{"event-data": 5, "signature": [], "events": {}, "Type": 7, "mandrill_events": 1}',
        "application/json",
    ),
    "8-bit bytes": (b"\xff\xfe\x00", "application/json"),
    "a form": (b"mandrill_events=%7B&signature=x&timestamp=y", "application/x-www-form-urlencoded"),
    "NUL in an address": (
        b'[{"event": "bounce", "email": "a\\u0000@example.com", "type": "bounce"}]',
        "application/json",
    ),
}


def _auth(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


@pytest.fixture
def client(settings):
    """A client that sees a 500 as the ESP would, instead of the exception; DEBUG off, so ADMINS get mail."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}  # only that: ESPs with their own keys are not set up
    settings.ADMINS = ["ops@example.com"]
    settings.DEBUG = False
    return Client(raise_request_exception=False)


def test_the_list_covers_the_esps_anymail_supports():
    assert len(ENDPOINTS) >= 14 and "/anymail/mailgun/tracking/" in ENDPOINTS


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("auth", [{}, _auth("esp:wrong")], ids=["no credentials", "wrong credentials"])
def test_an_unauthenticated_post_is_refused_without_a_500(client, endpoint, auth):
    sent_delivery("jane@example.com")
    response = client.post(endpoint, data=b"{}", content_type="application/json", **auth)
    assert response.status_code in (400, 401, 403), response.content[:300]
    assert mail.outbox == []
    assert not BounceEvent.objects.exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", BODIES, ids=list(BODIES))
def test_a_malformed_authenticated_post_is_answered_without_a_500(client, settings, endpoint, body):
    # Every ESP's own key set too, so the body itself is what each view gets to read.
    settings.ANYMAIL |= {
        "MAILGUN_WEBHOOK_SIGNING_KEY": "k",
        "MAILERSEND_SIGNING_SECRET": "k",
        "POSTAL_WEBHOOK_KEY": "k",
        "MANDRILL_WEBHOOK_KEY": "k",
        "UNISENDER_GO_API_KEY": "k",
    }
    sent_delivery("jane@example.com")
    data, content_type = BODIES[body]
    response = client.post(endpoint, data=data, content_type=content_type, **_auth(SECRET))
    assert response.status_code in (200, 400, 403), response.content[:300]
    assert mail.outbox == []
    assert sent_delivery.__module__ and not BounceEvent.objects.exclude(subscriber__status=SubscriberStatus.ACTIVE)
