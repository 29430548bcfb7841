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
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import mail_admins
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger("digest.cron")


def send_digests_job() -> None:
    """Cron entry point: one digest run at the current time, its outcome in the log."""
    from digest.run import digest_run

    started = timezone.now()
    try:
        summary = digest_run(now=started, progress=logger.debug)
    except Exception as error:
        # django-crontab would only log this; make it loud and tell the admins.
        logger.exception("Digest run at %s failed", started.isoformat())
        mail_admins("Digest run failed", f"The digest run at {started.isoformat()} failed: {error!r}")
        raise
    logger.info("Digest run at %s: %s", started.isoformat(), summary)


# ----------------------------------------------------------------------- schedules

_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_NAMES = ["minute", "hour", "day of month", "month", "day of week"]


@dataclass(frozen=True)
class CronSchedule:
    """A five-field cron expression (numbers, *, ranges, lists and steps)."""

    expression: str
    fields: tuple[frozenset[int], ...]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> "CronSchedule":
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"{expression!r}: a cron schedule has five fields (minute hour day month weekday)")
        fields = tuple(
            _field_parse(part, low, high, name) for part, (low, high), name in zip(parts, _RANGES, _NAMES, strict=True)
        )
        weekdays = frozenset(day % 7 for day in fields[4])  # 7 and 0 are both Sunday
        return cls(expression, (*fields[:4], weekdays), parts[2] == "*", parts[4] == "*")

    def matches(self, moment: datetime.datetime) -> bool:
        minute, hour, day, month, weekday = self.fields
        cron_weekday = (moment.weekday() + 1) % 7
        if self.any_day or self.any_weekday:
            day_ok = moment.day in day and cron_weekday in weekday
        else:  # cron's rule: when both are restricted, either may match
            day_ok = moment.day in day or cron_weekday in weekday
        return moment.minute in minute and moment.hour in hour and moment.month in month and day_ok

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """Return the first matching minute strictly after `moment`."""
        candidate = moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
        for _ in range(366 * 24 * 60):
            if self.matches(candidate):
                return candidate
            candidate += datetime.timedelta(minutes=1)
        raise ValueError(f"{self.expression!r} never matches")


def _field_parse(text: str, low: int, high: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                start, end = (int(x) for x in base.split("-", 1))
            else:
                start = end = int(base)
                if step_text:
                    end = high
        except ValueError:
            raise ValueError(f"{text!r} is not a valid {name} field") from None
        if step < 1 or not (low <= start <= end <= high):
            raise ValueError(f"{text!r}: {name} must be within {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


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
