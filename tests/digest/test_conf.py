"""digest.conf: every DIGEST_* setting read in one place; a wrong one names itself."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from digest.conf import digest_settings


def test_defaults_apply_when_unset():
    assert digest_settings.BATCH_SIZE == 2000
    assert digest_settings.CONNECTIONS == 128 and digest_settings.RATE_LIMIT == 0
    assert digest_settings.MAILER == "digest"
    assert digest_settings.CLAIM_TIMEOUT <= 120  # a dead sender's lease runs out within two minutes


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DIGEST_BATCH_SIZE", "200", "DIGEST_BATCH_SIZE must be an integer"),
        ("DIGEST_BATCH_SIZE", True, "DIGEST_BATCH_SIZE must be an integer"),
        ("DIGEST_BATCH_SIZE", 0, "DIGEST_BATCH_SIZE must be at least 1"),
        ("DIGEST_MAILER", 5, "DIGEST_MAILER must be a string"),
        ("DIGEST_MAILER", "nowhere", "DIGEST_MAILER: 'nowhere' is not an alias in MAILERS"),
        ("DEFAULT_FROM_EMAIL", "two@example.com, addresses@example.com", "DEFAULT_FROM_EMAIL"),
        ("DIGEST_PROVIDER_RATES", "google=fast", "DIGEST_PROVIDER_RATES: 'google=fast' is not provider="),
        ("DIGEST_PROVIDER_RATES", "google=20,=5", "DIGEST_PROVIDER_RATES: '=5'"),
        ("DIGEST_PROVIDER_RATES", "microsoft=0", "DIGEST_PROVIDER_RATES: 'microsoft=0'"),
    ],
)
def test_a_wrong_setting_is_named(settings, name, value, message):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        digest_settings.check_all()


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        digest_settings.NO_SUCH_SETTING  # noqa: B018


def test_provider_rates_are_read_per_provider(settings):
    settings.DIGEST_PROVIDER_RATES = "google=20, Microsoft=2.5,"
    assert digest_settings.provider_rates == {"google": 20.0, "microsoft": 2.5}
