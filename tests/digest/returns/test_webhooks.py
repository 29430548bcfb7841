"""ESP events through django-anymail's tracking webhooks, with payloads shaped as each ESP documents them."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import pytest

from digest.models import BounceEvent, BounceKind
from newsletters.models import Subscriber, SubscriberStatus, SubscriptionStatus
from tests.digest.returns.mail import sent_delivery

pytestmark = pytest.mark.django_db
PAYLOADS = Path(__file__).parent / "webhooks"
SECRET = "esp:correct-horse-battery"
MAILGUN_KEY = "mailgun-signing-key-for-tests"


@pytest.fixture(autouse=True)
def _anymail(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


def _auth(secret: str = SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def _payload(name: str, **values) -> str:
    text = (PAYLOADS / name).read_text()
    values.setdefault("nonce", uuid.uuid4().hex[:12])
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _ses(client, name: str, auth: dict | None = None, **values):
    """Post as Amazon SNS delivers an SES notification: JSON in a JSON envelope, as text/plain."""
    message_id = str(uuid.uuid4())
    sns = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:1234567890:SES_Events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": _payload(name, **values),
        "Timestamp": "2026-06-02T08:01:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE==",
    }
    return client.post(
        "/anymail/amazon_ses/tracking/",
        data=json.dumps(sns),
        content_type="text/plain; charset=UTF-8",
        headers={"x-amz-sns-message-id": message_id, "x-amz-sns-message-type": "Notification"},
        **(_auth() if auth is None else auth),
    )


def _json(client, esp: str, body: str, auth: dict | None = None):
    return client.post(
        f"/anymail/{esp}/tracking/",
        data=body,
        content_type="application/json",
        **(_auth() if auth is None else auth),
    )


def _status(email: str) -> str:
    return Subscriber.objects.get(email=email).status


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("ses_bounce_permanent.json", BounceKind.HARD, SubscriberStatus.SUPPRESSED),
        ("ses_bounce_transient.json", BounceKind.SOFT, SubscriberStatus.ACTIVE),
        ("ses_complaint.json", BounceKind.COMPLAINT, SubscriberStatus.UNSUBSCRIBED),
    ],
)
def test_amazon_ses_through_sns(client, name, kind, status):
    sent_delivery("jane@example.com")
    response = _ses(client, name, email="jane@example.com")
    assert response.status_code == 200
    assert BounceEvent.objects.get().kind == kind
    assert BounceEvent.objects.get().source == "amazon ses"
    assert _status("jane@example.com") == status


def test_postmark_hard_bounce_and_spam_complaint(client):
    sent_delivery("ada@example.com")
    sent_delivery("bob@example.com")
    assert _json(client, "postmark", _payload("postmark_hard_bounce.json", email="ada@example.com")).status_code == 200
    assert (
        _json(client, "postmark", _payload("postmark_spam_complaint.json", email="bob@example.com")).status_code == 200
    )
    assert _status("ada@example.com") == SubscriberStatus.SUPPRESSED
    assert _status("bob@example.com") == SubscriberStatus.UNSUBSCRIBED
    hard = BounceEvent.objects.get(kind=BounceKind.HARD)
    assert hard.status == "5.1.1" and "does not exist" in hard.diagnostic


# Anymail still parses SendGrid's events but warns that it no longer tests them upstream.
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_batch_acts_on_bounces_and_spam_reports_only(client):
    sent_delivery("ada@example.com")
    bob = sent_delivery("bob@example.com").subscription.subscriber
    body = _payload("sendgrid_events.json", email="ada@example.com", other="bob@example.com")
    assert _json(client, "sendgrid", body).status_code == 200
    assert sorted(BounceEvent.objects.values_list("kind", flat=True)) == [BounceKind.COMPLAINT, BounceKind.HARD]
    assert set(bob.subscriptions.values_list("status", flat=True)) == {SubscriptionStatus.UNSUBSCRIBED}
    # SendGrid retries a batch it thinks failed: the same events count once.
    assert _json(client, "sendgrid", body).status_code == 200
    assert BounceEvent.objects.count() == 2


def test_brevo_unsubscribed(client):
    sent_delivery("ada@example.com")
    assert _json(client, "brevo", _payload("brevo_unsubscribed.json", email="ada@example.com")).status_code == 200
    assert BounceEvent.objects.get().kind == BounceKind.UNSUBSCRIBED
    assert _status("ada@example.com") == SubscriberStatus.UNSUBSCRIBED


def _mailgun(body: str, key: str = MAILGUN_KEY) -> str:
    data = json.loads(body)
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    data["signature"] = {"timestamp": timestamp, "token": token, "signature": signature}
    return json.dumps(data)


def test_mailgun_signed_event(client):
    sent_delivery("ada@example.com")
    body = _mailgun(_payload("mailgun_failed_permanent.json", email="ada@example.com"))
    assert _json(client, "mailgun", body).status_code == 200
    assert _status("ada@example.com") == SubscriberStatus.SUPPRESSED


def test_mailgun_with_a_wrong_signature_changes_nothing(client):
    sent_delivery("ada@example.com")
    body = _mailgun(_payload("mailgun_failed_permanent.json", email="ada@example.com"), key="not-the-key")
    assert _json(client, "mailgun", body).status_code == 400
    assert _status("ada@example.com") == SubscriberStatus.ACTIVE


@pytest.mark.parametrize("auth", [{}, _auth("esp:wrong")], ids=["no credentials", "wrong credentials"])
def test_an_unauthenticated_post_changes_nothing(client, auth):
    sent_delivery("jane@example.com")
    # 400, or 401 where anymail asks for credentials (SNS sends them only when asked).
    assert _ses(client, "ses_complaint.json", auth=auth, email="jane@example.com").status_code in (400, 401)
    postmark = _payload("postmark_hard_bounce.json", email="jane@example.com")
    assert _json(client, "postmark", postmark, auth).status_code in (400, 401)
    assert not BounceEvent.objects.exists()
    assert _status("jane@example.com") == SubscriberStatus.ACTIVE


def test_without_a_webhook_secret_the_endpoints_are_closed(client, settings):
    settings.ANYMAIL = {}
    sent_delivery("jane@example.com")
    assert (
        _json(client, "postmark", _payload("postmark_hard_bounce.json", email="jane@example.com"), {}).status_code
        == 404
    )
    assert _status("jane@example.com") == SubscriberStatus.ACTIVE


def test_an_event_for_an_unknown_address_is_accepted_and_ignored(client):
    assert (
        _json(client, "postmark", _payload("postmark_hard_bounce.json", email="nobody@example.com")).status_code == 200
    )
    assert not BounceEvent.objects.exists()


@pytest.mark.parametrize(
    ("stored", "reported"),
    [("ann@bücher.example", "ann@xn--bcher-kva.example"), ("ann@xn--bcher-kva.example", "ann@BÜCHER.example")],
    ids=["stored Unicode, reported punycode", "stored punycode, reported Unicode"],
)
def test_an_international_domain_matches_in_either_form(client, stored, reported):
    """L2: ESPs report IDN domains in punycode; they never matched the stored Unicode address."""
    sent_delivery(stored)
    assert _json(client, "postmark", _payload("postmark_hard_bounce.json", email=reported)).status_code == 200
    assert _status(stored) == SubscriberStatus.SUPPRESSED
