import datetime

import pytest

from hooks.models import Endpoint, EventType
from hooks.signing import secret_generate
from tests.factories import NewsletterFactory
from tests.hooks.receiver import Receiver

T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    """The receiver listens on 127.0.0.1, which production refuses (hooks.addresses)."""
    settings.HOOKS_ALLOW_PRIVATE = 1


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def endpoint_make(*, url: str, newsletter=None, events=None, **fields) -> Endpoint:
    """An endpoint as the admin makes it: every event unless told, a fresh secret."""
    return Endpoint.objects.create(
        newsletter=newsletter or NewsletterFactory(),
        url=url,
        events=events if events is not None else list(EventType.values),
        secret=secret_generate(),
        **fields,
    )
