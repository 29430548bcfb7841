import os
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from digest.cron import scheduler_jobs, scheduler_loop
from newsletters.conf import site_url
from newsletters.devmail import capture_server_start


class Command(BaseCommand):
    help = "Development: the site, a local SMTP server capturing all mail under var/mail, and the digest scheduler."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-scheduler", action="store_true", help="Do not run CRONJOBS in the background")

    def handle(self, *args, **options):
        # runserver's autoreloader re-runs this command in a child process (RUN_MAIN set);
        # services start once, in the parent, and survive reloads.
        if not os.environ.get("RUN_MAIN"):
            capture_server_start(directory=settings.LOCAL_MAIL_DIR, port=settings.LOCAL_SMTP_PORT)
            self.stdout.write(
                f"Local SMTP capture on 127.0.0.1:{settings.LOCAL_SMTP_PORT}; read mail at {site_url('/dev/outbox/')}"
            )
            if not options["no_scheduler"]:
                jobs = scheduler_jobs()
                loop = threading.Thread(
                    target=scheduler_loop,
                    kwargs={"jobs": jobs, "clock": timezone.now, "sleep": time.sleep},
                    daemon=True,
                    name="scheduler",
                )
                loop.start()
                schedules = ", ".join(schedule.expression for schedule, _ in jobs)
                self.stdout.write(f"Digest scheduler running CRONJOBS ({schedules}); log lines below.")
        call_command("runserver", options["addrport"])
