"""Signatures a Standard Webhooks receiver accepts: checked by a verifier written here from the spec."""

import base64
import datetime
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from hooks.delivery import endpoint_deliver
from hooks.models import EventType
from hooks.outbox import events_record
from hooks.signing import signature_make
from tests.hooks.conftest import T0, endpoint_make


def verify(*, secret: str, headers: dict[str, str], body: bytes, now: int, tolerance: int = 300) -> bool:
    """A receiver's check, from standardwebhooks.com: HMAC-SHA256 of id.timestamp.body, fresh timestamp."""
    timestamp = int(headers["webhook-timestamp"])
    if abs(now - timestamp) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = hmac.new(key, f"{headers['webhook-id']}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for signature in headers["webhook-signature"].split():
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(value), expected):
            return True
    return False


def test_the_specs_published_example_signs_the_same():
    # The example of the Standard Webhooks specification (and Svix's documentation).
    assert (
        signature_make(
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            webhook_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.django_db
def test_a_delivered_event_verifies_and_a_tampered_one_does_not(receiver):
    endpoint = endpoint_make(url=receiver.url)
    [event] = events_record(
        type=EventType.ISSUE_PUBLISHED, data={"issue": {"id": 7}}, key="issue:7", now=T0, newsletter_ids=None
    )
    endpoint_deliver(endpoint_id=endpoint.pk, now=T0)

    [request] = receiver.requests
    assert request.headers["webhook-id"] == event.webhook_id
    assert request.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert request.headers["content-type"] == "application/json"
    assert request.payload == {"type": "issue.published", "timestamp": T0.isoformat(), "data": {"issue": {"id": 7}}}
    now = int(T0.timestamp())
    assert verify(secret=endpoint.secret, headers=request.headers, body=request.body, now=now)
    assert not verify(secret=endpoint.secret, headers=request.headers, body=request.body + b" ", now=now)
    assert not verify(secret=endpoint.secret, headers=request.headers, body=request.body, now=now + 3600)
    other = endpoint_make(url=receiver.url).secret
    assert not verify(secret=other, headers=request.headers, body=request.body, now=now)


@pytest.mark.django_db
def test_a_retry_keeps_the_id_and_body_and_signs_its_own_timestamp(receiver):
    receiver.fail_first = 1
    endpoint = endpoint_make(url=receiver.url)
    events_record(type=EventType.COMPLAINT, data={"n": "é"}, key="subscriber:1", now=T0, newsletter_ids=None)
    endpoint_deliver(endpoint_id=endpoint.pk, now=T0)
    later = T0 + datetime.timedelta(minutes=1)
    endpoint_deliver(endpoint_id=endpoint.pk, now=later)

    first, second = receiver.requests
    assert (first.status, second.status) == (500, 204)
    assert first.webhook_id == second.webhook_id and first.body == second.body
    assert json.loads(second.body)["data"] == {"n": "é"}
    assert second.headers["webhook-timestamp"] == str(int(later.timestamp()))
    assert verify(secret=endpoint.secret, headers=second.headers, body=second.body, now=int(later.timestamp()))


@pytest.mark.django_db
def test_the_verifier_in_the_docs_accepts_a_real_delivery_and_refuses_a_tampered_one(receiver):
    page = (Path(settings.BASE_DIR) / "docs" / "operating" / "webhooks.md").read_text(encoding="utf-8")
    [snippet] = [block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "def verify" in block]
    namespace = {}
    exec(snippet, namespace)  # the page's own code, as a reader would paste it
    endpoint = endpoint_make(url=receiver.url)
    events_record(type=EventType.COMPLAINT, data={}, key="subscriber:1", now=timezone.now(), newsletter_ids=None)
    endpoint_deliver(endpoint_id=endpoint.pk, now=timezone.now())
    [request] = receiver.requests
    assert namespace["verify"](endpoint.secret, request.headers, request.body)
    assert not namespace["verify"](endpoint.secret, request.headers, request.body.replace(b"complaint", b"bounce"))
