import time

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from digest.cron import scheduler_jobs, scheduler_loop


class Command(BaseCommand):
    help = "Run the CRONJOBS on their cron schedules in the foreground (development, or hosts without cron)."

    def handle(self, *args, **options):
        try:
            jobs = scheduler_jobs()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Scheduler: {len(jobs)} job(s); Ctrl-C to stop.")
        try:
            scheduler_loop(jobs=jobs, clock=timezone.now, sleep=time.sleep)
        except KeyboardInterrupt:
            self.stdout.write("Scheduler stopped.")
