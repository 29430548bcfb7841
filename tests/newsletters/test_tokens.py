"""Signed, purpose-bound link tokens: unguessable, untransferable between purposes, expiring."""

import datetime

import pytest
from django.core import signing
from django.urls import reverse
from freezegun import freeze_time

from newsletters.tokens import TokenExpired, TokenInvalid, confirm_url, token_make, token_path, token_read


def test_a_token_reads_back_for_its_own_purpose_only():
    token = token_make(purpose="unsubscribe", value=42)
    assert token_read(token, purpose="unsubscribe", kind=int) == 42
    with pytest.raises(TokenInvalid):
        token_read(token, purpose="preferences", kind=int)


@pytest.mark.parametrize("token", ["", "42", "x" * 500, "NDI:1abc:forged", "\x00", "ü"])
def test_forged_and_malformed_tokens_are_invalid(token):
    with pytest.raises(TokenInvalid):
        token_read(token, purpose="unsubscribe", kind=int)


def test_a_tampered_token_is_invalid():
    token = token_make(purpose="unsubscribe", value=42)
    forged = signing.dumps(43, salt="newsletters.unsubscribe").split(":")[0] + token[token.index(":") :]
    with pytest.raises(TokenInvalid):
        token_read(forged, purpose="unsubscribe", kind=int)


def test_the_payload_must_have_the_purposes_shape():
    token = token_make(purpose="confirm", value={"e": "a@example.com"})
    with pytest.raises(TokenInvalid):
        token_read(token, purpose="confirm", kind=int)
    with pytest.raises(TokenInvalid):
        token_read(token_make(purpose="unsubscribe", value=True), purpose="unsubscribe", kind=int)


def test_an_old_token_expires(settings):
    token = token_make(purpose="confirm", value={"e": "a@example.com"})
    with pytest.raises(TokenExpired):
        token_read(token, purpose="confirm", kind=dict, max_age=datetime.timedelta(seconds=-1))


def test_a_compressed_token_never_starts_a_path_segment_with_a_dot(settings):
    settings.SITE_URL = "https://news.example.org"
    request = {"e": "ann@example.com", "n": "Ann " * 20, "tz": "Europe/Paris", "c": {"1": "weekly"}, "iat": 1}
    url = confirm_url(request)
    assert "/." not in url and url.startswith("https://news.example.org/confirm/~")
    token = url.removeprefix("https://news.example.org/confirm/").removesuffix("/")
    assert token_read(token, purpose="confirm", kind=dict) == request
    # A link mailed before, with the dot, still reads.
    assert token_read("." + token[1:], purpose="confirm", kind=dict) == request


@pytest.mark.parametrize("purpose", ["unsubscribe", "preferences", "undo"])
@pytest.mark.parametrize("value", [0, 7, 42, 123_456_789, -3])
def test_an_id_token_is_the_one_django_signing_makes(purpose, value, settings):
    """The fast id token (a key derived once, no signer built) is signing.dumps's token, byte for byte."""
    with freeze_time("2026-06-08 09:00:00"):
        assert token_make(purpose=purpose, value=value) == signing.dumps(value, salt=f"newsletters.{purpose}")
        settings.SECRET_KEY = "another-secret-" + "y" * 40  # the kept key follows the secret
        assert token_make(purpose=purpose, value=value) == signing.dumps(value, salt=f"newsletters.{purpose}")


def test_an_id_token_made_under_another_secret_is_invalid(settings):
    token = token_make(purpose="unsubscribe", value=42)
    settings.SECRET_KEY = "another-secret-" + "y" * 40
    with pytest.raises(TokenInvalid):
        token_read(token, purpose="unsubscribe", kind=int)
    assert token_read(token_make(purpose="unsubscribe", value=42), purpose="unsubscribe", kind=int) == 42


@pytest.mark.parametrize(
    "view", ["newsletters:unsubscribe", "newsletters:preferences", "newsletters:confirm", "newsletters:undo"]
)
def test_a_token_path_is_what_reverse_gives(view):
    for token in (token_make(purpose="unsubscribe", value=42), token_make(purpose="confirm", value={"e": "ü@x"})):
        assert token_path(view, token) == reverse(view, kwargs={"token": token})
