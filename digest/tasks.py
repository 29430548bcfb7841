"""The digest job's sending as tasks of Django's Tasks framework: the run enqueues, workers send.

A send task drains the ledger: it claims batches (SKIP LOCKED on PostgreSQL) until none is
left, so any number of them can run at once on any number of machines and each adds
throughput; one that finds nothing left ends at once. Claims are taken when a task runs,
never when it is enqueued, so a task waiting in a queue holds nothing that could expire.
A task whose worker dies leaves its claims to expire: they are leases on the database's
clock, renewed while a batch is sent (digest.sending.lease), so a dead worker is noticed once
DIGEST_CLAIM_TIMEOUT passes without a renewal; any sender claiming after that (another
worker's task, the next run's) records what its journal proves was sent and sends the rest.
A worker asked to stop (SIGTERM, SIGINT) lets its task finish the messages in flight,
record them and hand the rest back, then stops as the worker's own shutdown says.

TASKS_URL picks the backend (project.env.env_tasks): immediate:// runs the one task inline,
database:// (django-tasks-db, `manage.py db_worker`) and rq://host:port/db (django-tasks-rq,
`manage.py rqworker`) hand them to workers.
"""

import datetime
import math
import time
from collections.abc import Callable

from django.tasks import TaskContext, TaskResult, TaskResultStatus, task
from django.tasks.backends.immediate import ImmediateBackend
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from digest.conf import digest_settings
from digest.exceptions import DigestError
from digest.models import Delivery, DeliveryStatus
from digest.sending.batches import deliveries_send
from digest.sending.lease import stop_on_signals
from digest.sending.ledger import deliveries_waiting
from digest.sending.letters import letters_send
from project.clock import db_now


@task(takes_context=True)
def digest_send(context: TaskContext, *, now: str, newsletter_ids: list[int] | None, begun: str = "") -> dict:
    """Send every claimable digest of the run at `now`, then every due letter; return the counts.

    digest.sending.batches.deliveries_send sends the digests, digest.sending.letters.letters_send the letters.
    The task result's id is the claimant: a delivery's "claimed by" names the task that sent it.
    (`begun` is accepted and ignored: tasks enqueued before claims became leases carry it.)
    """
    claimant, moment = str(context.task_result.id), datetime.datetime.fromisoformat(now)
    with stop_on_signals():
        counts, dead = deliveries_send(claimant=claimant, now=moment, newsletter_ids=newsletter_ids)
        counts |= letters_send(claimant=claimant, now=moment, newsletter_ids=newsletter_ids)
    if isinstance(digest_send.get_backend(), DatabaseBackend):
        tasks_dead_record(dead, taken_over_by=str(context.task_result.id))
    return counts


# A running send task that holds no claim and started this many leases ago is taken for dead.
DEAD_AFTER_LEASES = 10


def tasks_dead_record(dead: set[str], *, taken_over_by: str) -> int:
    """Mark as failed the django-tasks-db results of send tasks whose worker died; return how many.

    Such a task stays "running" in the task store forever. It is dead when its expired
    claims were just taken over (`dead`), or when it holds no claim and started more than
    DEAD_AFTER_LEASES × DIGEST_CLAIM_TIMEOUT ago on the database's clock (killed between
    two batches). A live task wrongly marked so (a very long one, caught between batches)
    is marked successful again by its worker when it ends.
    """
    long_ago = db_now() - datetime.timedelta(seconds=DEAD_AFTER_LEASES * digest_settings.CLAIM_TIMEOUT)
    running = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, task_path=digest_send.module_path)
    holding = set(Delivery.objects.filter(status=DeliveryStatus.SENDING).values_list("claimed_by", flat=True))
    ids = []
    for result in running.only("id", "started_at"):
        if str(result.id) in dead:
            ids.append(result.id)
        elif str(result.id) not in holding and result.started_at is not None and result.started_at < long_ago:
            ids.append(result.id)
    if not ids:
        return 0
    return DBTaskResult.objects.filter(id__in=ids, status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.FAILED,
        finished_at=timezone.now(),
        exception_class_path="digest.exceptions.SenderDied",
        traceback=(
            "The worker running this task stopped (killed or crashed). Its claims expired, and task "
            f"{taken_over_by} recorded what its journal proved sent and sent the rest."
        ),
    )


def sends_enqueue(*, now: datetime.datetime, newsletter_ids: list[int] | None) -> list[TaskResult]:
    """Enqueue the run's send tasks: one inline, else one per batch waiting, at most DIGEST_SEND_TASKS."""
    if isinstance(digest_send.get_backend(), ImmediateBackend):
        count = 1
    else:
        waiting = deliveries_waiting(now=now, newsletter_ids=newsletter_ids).count()
        count = max(1, min(digest_settings.SEND_TASKS, math.ceil(waiting / digest_settings.BATCH_SIZE)))
    arguments = {"now": now.isoformat(), "newsletter_ids": newsletter_ids}
    return [digest_send.enqueue(**arguments) for _ in range(count)]


def sends_wait(
    results: list[TaskResult],
    *,
    say: Callable[[str], None],
    poll: float = 0.5,
    timeout: float | None = None,
) -> None:
    """Wait until every send task has finished (or failed), polling the task backend."""
    deadline = None if timeout is None else time.monotonic() + timeout
    said = None
    while True:
        for result in results:
            if not result.is_finished:
                result.refresh()
        left = sum(1 for result in results if not result.is_finished)
        if not left:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise DigestError(f"{left} send tasks still unfinished after {timeout:g} s.")
        if left != said:
            say(f"waiting for the workers: {left} of {len(results)} send tasks unfinished")
            said = left
        time.sleep(poll)  # the task backends offer no way to be told; a poll costs one query
