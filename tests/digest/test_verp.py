"""VERP: each digest's envelope sender names its delivery, signed; without the setting, nothing changes."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from digest.checks import settings_check_all
from digest.models import Delivery
from digest.verp import verp_delivery_id, verp_sender, verp_token
from tests.digest.conftest import at
from tests.digest.sending.test_senders import sender  # noqa: F401  (the fixture: the fast path and send_messages)


@pytest.mark.usefixtures("sender")
def test_each_digest_goes_out_from_its_own_signed_address(world, settings):
    settings.DIGEST_BOUNCE_ADDRESS = "bounces@news.example.org"
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    assert world.run(at(2026, 6, 2, 8, 5)).sent == 2
    for received in world.smtp.received:
        delivery = Delivery.objects.get(subscription__subscriber__email=received.recipients[0])
        assert received.sender == f"bounces+{verp_token(delivery.pk)}@news.example.org"
        assert verp_delivery_id(received.sender) == (delivery.pk, True)
        # Readers still see the newsletter's From; only the envelope (Return-Path) changes.
        assert received.message["From"] == "News <news@example.com>"


@pytest.mark.usefixtures("sender")
def test_without_the_setting_the_envelope_sender_is_the_from_address(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    [received] = world.smtp.received
    assert received.sender == "news@example.com"
    assert received.message["From"] == "News <news@example.com>"


def test_a_token_is_short_lowercase_and_survives_an_mta_changing_case(settings):
    settings.DIGEST_BOUNCE_ADDRESS = "bounces@news.example.org"
    address = verp_sender(123456789)
    token = verp_token(123456789)
    assert address == f"bounces+{token}@news.example.org"
    assert len(token) <= 20 and token == token.lower() and token.replace("-", "").isalnum()
    assert verp_delivery_id(address.upper()) == (123456789, True)
    assert verp_delivery_id(f"<{address}>") == (123456789, True)


@pytest.mark.parametrize(
    "text",
    [
        "bounces+21i3v9-aaaaaaaaaaaa@news.example.org",  # a signature made up
        "bounces@news.example.org",  # no token at all
    ],
)
def test_a_made_up_token_names_no_delivery(text):
    assert verp_delivery_id(text)[0] is None


def test_a_token_does_not_name_another_delivery():
    token = verp_token(41)
    other = verp_token(42).split("-")[0] + "-" + token.split("-")[1]
    assert verp_delivery_id(f"bounces+{other}@x.org") == (None, True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not an address", "is not a plain address"),
        ("bounces+x@news.example.org", "use an address without one"),
    ],
)
def test_a_wrong_bounce_address_names_the_setting(settings, value, message):
    settings.DIGEST_BOUNCE_ADDRESS = value
    with pytest.raises(ImproperlyConfigured, match=f"DIGEST_BOUNCE_ADDRESS.*{message}"):
        settings_check_all()
