import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.module_loading import import_string

from digest.cron import CronSchedule, scheduler_loop


class Command(BaseCommand):
    help = "Run the CRONJOBS on their cron schedules in the foreground (development, or hosts without cron)."

    def handle(self, *args, **options):
        self.stdout.write(f"Scheduler: {len(scheduler_jobs())} job(s); Ctrl-C to stop.")
        try:
            scheduler_loop(jobs=scheduler_jobs(), clock=timezone.now, sleep=time.sleep)
        except KeyboardInterrupt:
            self.stdout.write("Scheduler stopped.")


def scheduler_jobs():
    """Return (schedule, callable) for each CRONJOBS entry, as django-crontab would run it."""
    jobs = []
    for entry in settings.CRONJOBS:
        try:
            schedule = CronSchedule.parse(entry[0])
            function = import_string(entry[1])
        except (ValueError, ImportError) as error:
            raise CommandError(f"CRONJOBS entry {entry!r}: {error}") from None
        args = entry[2] if len(entry) > 2 and not isinstance(entry[2], str) else []
        kwargs = entry[3] if len(entry) > 3 else {}
        jobs.append((schedule, lambda function=function, args=args, kwargs=kwargs: function(*args, **kwargs)))
    return jobs
