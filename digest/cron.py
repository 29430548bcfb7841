"""The scheduled job, and what cron needs: schedules, and the state of installed crontab entries.

django-crontab installs `CRONJOBS` into the system crontab (`manage.py crontab add`) and
runs each entry with `manage.py crontab run HASH`. It swallows failures (a failing job
is only logged, a missing crontab binary still exits 0), so the job logs its own
summary and errors, mails ADMINS when it fails, and system checks (digest/checks.py)
report a missing binary or stale entries.
"""

import datetime
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import mail_admins
from django.utils import timezone
from django.utils.module_loading import import_string

from digest.crontab import CronSchedule
from digest.returns.mailboxes import mailbox_read
from digest.returns.returned import returned_read, summary_line
from digest.run import digest_run
from project.clock import db_now

logger = logging.getLogger("digest.cron")


def send_digests_job() -> None:
    """Cron entry point: one digest run at the current time on the database's clock, its outcome in the log."""
    started = db_now()
    try:
        summary = digest_run(now=started, progress=logger.debug, processes="auto")
    except Exception as error:
        # django-crontab would only log this; make it loud and tell the admins.
        logger.exception("Digest run at %s failed", started.isoformat())
        mail_admins("Digest run failed", f"The digest run at {started.isoformat()} failed: {error!r}")
        raise
    logger.info("Digest run at %s: %s", started.isoformat(), summary)


def process_bounces_job() -> None:
    """Cron entry point: read BOUNCE_MAILBOX_URL's returned mail, the counts in the log."""
    started = timezone.now()
    try:
        counts = returned_read(
            lambda handle: mailbox_read(settings.BOUNCE_MAILBOX_URL, handle),
            source="mailbox",
            now=started,
            progress=logger.debug,
        )
    except Exception as error:
        logger.exception("Reading returned mail at %s failed", started.isoformat())
        mail_admins("Reading returned mail failed", f"process_bounces at {started.isoformat()} failed: {error!r}")
        raise
    logger.info("Returned mail at %s: %s", started.isoformat(), summary_line(counts))


# ----------------------------------------------------------------------- schedules


def scheduler_loop(
    *,
    jobs: list[tuple[CronSchedule, Callable[[], None]]],
    clock: Callable[[], datetime.datetime],
    sleep: Callable[[float], None],
    iterations: int | None = None,
) -> int:
    """Run each job at its schedule's times, one after another, until `iterations` firings."""
    fired = 0
    while iterations is None or fired < iterations:
        now = clock()
        due_at = min(schedule.next_after(now) for schedule, _ in jobs)
        sleep(max((due_at - clock()).total_seconds(), 0))
        for schedule, job in jobs:
            if schedule.matches(due_at):
                try:
                    job()
                except Exception:
                    logger.exception("Scheduled job %s failed", getattr(job, "__name__", job))
        fired += 1
    return fired


# --------------------------------------------------------------- installed entries


def scheduler_jobs():
    """Return (schedule, callable) for each CRONJOBS entry, as django-crontab would run it."""
    jobs = []
    for entry in settings.CRONJOBS:
        try:
            schedule = CronSchedule.parse(entry[0])
            function = import_string(entry[1])
        except (ValueError, ImportError) as error:
            raise ImproperlyConfigured(f"CRONJOBS entry {entry!r}: {error}") from None
        args = entry[2] if len(entry) > 2 and not isinstance(entry[2], str) else []
        kwargs = entry[3] if len(entry) > 3 else {}
        jobs.append((schedule, lambda function=function, args=args, kwargs=kwargs: function(*args, **kwargs)))
    return jobs
