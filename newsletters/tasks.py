"""The admin's subscriber imports as a task of Django's Tasks framework (TASKS_URL picks the backend).

With the immediate backend (the default) the import runs in the request that starts it;
with a worker backend the request only enqueues it and the progress page follows it.
"""

from django.tasks import task
from django.utils import timezone

from newsletters.subscriber_imports import subscriber_import_run


@task
def subscribers_import_task(*, import_id: int) -> dict:
    """Run one started import (newsletters.subscriber_imports.subscriber_import_run); return its counts."""
    return subscriber_import_run(import_id=import_id, now=timezone.now())
