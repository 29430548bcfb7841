"""The warm-up beside a web process's first request: a sample digest rendered once, in a thread,
without the database, so the editor's first preview finds Markdown, premailer and the templates ready."""

import threading

import pytest
from django.core.signals import request_started
from premailer import cache as premailer_cache

from digest.rendering.warm import WARM_UID, rendering_warm, rendering_warm_on_first_request


def test_the_sample_renders_without_the_database_and_leaves_the_stylesheet_parsed():
    # No django_db mark: any query would fail this test.
    premailer_cache.cache.clear()
    rendering_warm()
    # premailer keeps what it parsed (the email stylesheet, each rule's declarations) for the process.
    assert len(premailer_cache.cache) > 10


@pytest.mark.django_db
def test_the_first_request_starts_one_warm_up_and_later_ones_none(client):
    request_started.connect(rendering_warm_on_first_request, dispatch_uid=WARM_UID)  # as a new process
    before = {thread.ident for thread in threading.enumerate()}
    client.get("/healthz")
    warming = [t for t in threading.enumerate() if t.name == "digest-rendering-warm" and t.ident not in before]
    assert len(warming) == 1
    warming[0].join()
    client.get("/healthz")
    assert not [t for t in threading.enumerate() if t.name == "digest-rendering-warm"]
    assert not request_started.disconnect(dispatch_uid=WARM_UID)  # no longer listening
