"""Crontab lines: parsing a schedule into its next runs, and reading what crontab has installed."""

import datetime
import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass

from croniter import CroniterBadDateError, CroniterError, croniter
from django.conf import settings

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
