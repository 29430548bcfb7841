"""Who delivers: workers get a task once the change commits; the cron job delivers what is due."""

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from hooks.cron import deliver_webhooks_job
from hooks.models import Event, EventStatus
from hooks.tasks import hooks_deliver
from newsletters.services import subscription_unsubscribe
from tests.factories import SubscriptionFactory
from tests.hooks.conftest import endpoint_make

pytestmark = pytest.mark.django_db


def test_with_workers_a_task_is_enqueued_only_once_the_change_commits(settings, django_capture_on_commit_callbacks):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    subscription = SubscriptionFactory()
    endpoint = endpoint_make(url="http://127.0.0.1:9/", newsletter=subscription.newsletter)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        subscription_unsubscribe(subscription_id=subscription.pk, now=timezone.now())
        assert not DBTaskResult.objects.exists()
    assert len(callbacks) == 1
    task = DBTaskResult.objects.get()
    assert task.task_path == hooks_deliver.module_path and task.args_kwargs["kwargs"] == {"endpoint_id": endpoint.pk}


def test_inline_a_readers_request_never_waits_for_the_receiver_and_the_cron_job_delivers(
    receiver, django_capture_on_commit_callbacks
):
    subscription = SubscriptionFactory()
    endpoint_make(url=receiver.url, newsletter=subscription.newsletter)
    with django_capture_on_commit_callbacks(execute=True):
        subscription_unsubscribe(subscription_id=subscription.pk, now=timezone.now())
    assert not receiver.requests
    deliver_webhooks_job()
    assert [r.payload["type"] for r in receiver.requests] == ["subscription.unsubscribed"]
    assert Event.objects.get().status == EventStatus.DELIVERED
