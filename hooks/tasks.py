"""Delivery as a task of Django's Tasks framework: one task per endpoint with events waiting.

A task only names the endpoint; the events are in the outbox table, so a task lost with its
worker, or never enqueued (the process died between commit and enqueue), loses nothing: the
cron job (hooks.cron) finds every endpoint with due events and delivers or enqueues again.
With the immediate backend (the default), events written during a reader's request are left
to the cron job, so no reader waits for a receiver; admin actions and the cron job deliver inline.
"""

import dataclasses

from django.tasks import task
from django.tasks.backends.immediate import ImmediateBackend

from hooks.delivery import endpoint_deliver
from project.clock import db_now


@task()
def hooks_deliver(*, endpoint_id: int) -> dict:
    """Deliver an endpoint's pending events now (hooks.delivery.endpoint_deliver); return the counts."""
    return dataclasses.asdict(endpoint_deliver(endpoint_id=endpoint_id, now=db_now()))


def deliveries_enqueue(*, endpoint_ids: list[int], inline: bool) -> None:
    """Have these endpoints' events delivered: by workers, or here when tasks run inline and `inline` allows."""
    immediate = isinstance(hooks_deliver.get_backend(), ImmediateBackend)
    for endpoint_id in endpoint_ids:
        if not immediate:
            hooks_deliver.enqueue(endpoint_id=endpoint_id)
        elif inline:
            endpoint_deliver(endpoint_id=endpoint_id, now=db_now())
