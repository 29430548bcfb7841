"""The scheduled job, and what cron needs: schedules, and the state of installed crontab entries.

django-crontab installs `CRONJOBS` into the system crontab (`manage.py crontab add`) and
runs each entry with `manage.py crontab run HASH`. It swallows failures (a failing job
is only logged, a missing crontab binary still exits 0), so the job logs its own
summary and errors, mails ADMINS when it fails, and system checks (digest/checks.py)
report a missing binary or stale entries.
"""

import datetime
import hashlib
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from croniter import CroniterBadDateError, CroniterError, croniter
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import mail_admins
from django.utils import timezone
from django.utils.module_loading import import_string

from project.clock import db_now

logger = logging.getLogger("digest.cron")


def send_digests_job() -> None:
    """Cron entry point: one digest run at the current time on the database's clock, its outcome in the log."""
    from digest.run import digest_run

    started = db_now()
    try:
        summary = digest_run(now=started, progress=logger.debug)
    except Exception as error:
        # django-crontab would only log this; make it loud and tell the admins.
        logger.exception("Digest run at %s failed", started.isoformat())
        mail_admins("Digest run failed", f"The digest run at {started.isoformat()} failed: {error!r}")
        raise
    logger.info("Digest run at %s: %s", started.isoformat(), summary)


def process_bounces_job() -> None:
    """Cron entry point: read BOUNCE_MAILBOX_URL's returned mail, the counts in the log."""
    from digest.returns.mailboxes import mailbox_read
    from digest.returns.returned import returned_read, summary_line

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

_RANGE = re.compile(r"(\d+)-(\d+)")


@dataclass(frozen=True)
class CronSchedule:
    """A cron schedule as the system crontab takes it: five fields, or @hourly, @daily, @weekly….

    croniter does the parsing and matching (names, steps, the day-of-month/day-of-week OR
    rule); this only keeps to what cron itself accepts, since django-crontab writes the
    same expression into the crontab: no seconds or year column, no reversed range.
    """

    expression: str

    @classmethod
    def parse(cls, expression: str) -> "CronSchedule":
        expression = expression.strip()
        if not expression.startswith("@") and len(expression.split()) != 5:
            raise ValueError(f"{expression!r}: a cron schedule has five fields (minute hour day month weekday)")
        if any(int(low) > int(high) for low, high in _RANGE.findall(expression)):
            raise ValueError(f"{expression!r}: a range runs from low to high, as in 1-5")
        try:
            croniter(expression).get_next(datetime.datetime)
        except CroniterBadDateError:
            raise ValueError(f"{expression!r} never matches") from None
        except CroniterError as error:
            raise ValueError(f"{expression!r}: {error}") from None
        return cls(expression)

    def matches(self, moment: datetime.datetime) -> bool:
        """Whether the job runs in the minute of `moment`."""
        return croniter.match(self.expression, moment.replace(second=0, microsecond=0))

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """Return the first matching minute strictly after `moment`."""
        return croniter(self.expression, moment).get_next(datetime.datetime)


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


def job_hash(job) -> str:
    """Return django-crontab's identifier of a CRONJOBS entry (as written into crontab)."""
    return hashlib.md5(json.JSONEncoder(sort_keys=True).encode(job).encode("utf-8")).hexdigest()


def crontab_executable() -> str | None:
    """Return the crontab program django-crontab will call, if it exists."""
    return shutil.which(getattr(settings, "CRONTAB_EXECUTABLE", "/usr/bin/crontab"))


def crontab_installed_hashes(executable: str) -> set[str]:
    """Return the hashes of this project's jobs in the current user's crontab."""
    result = subprocess.run([executable, "-l"], capture_output=True, text=True, timeout=10, check=False)
    comment = getattr(settings, "CRONTAB_COMMENT", None) or "django-cronjobs for project"
    hashes = set()
    for line in result.stdout.splitlines():
        if line.rstrip().endswith(f"# {comment}") and "crontab run " in line:
            hashes.add(line.split("crontab run ", 1)[1].split()[0])
    return hashes


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
