import errno
import os
import socket
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from digest.cron import scheduler_jobs, scheduler_loop
from newsletters.conf import site_url
from newsletters.devmail import capture_server_start


def port_taken(host: str, port: int) -> bool:
    """Return whether something on this machine already listens on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port left in TIME_WAIT by the last run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def ports_check(*, web: tuple[str, int], smtp: tuple[str, int]) -> None:
    """Raise CommandError naming the first port already taken, and how to choose another."""
    if port_taken(*web):
        raise CommandError(
            f"Port {web[1]} on {web[0]} is already in use (another `make run`?): stop it, or pick another with "
            f"`make run PORT=8001`."
        )
    if port_taken(*smtp):
        raise CommandError(
            f"Port {smtp[1]} on {smtp[0]}, for the local SMTP capture, is already in use (Mailpit and MailHog "
            f"listen there too): stop it, or pick another with `make run SMTP_PORT=2525`."
        )


class Command(BaseCommand):
    help = "Development: the site, a local SMTP server capturing all mail under var/mail, and the digest scheduler."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-scheduler", action="store_true", help="Do not run CRONJOBS in the background")

    def handle(self, *args, **options):
        # runserver's autoreloader re-runs this command in a child process (RUN_MAIN set);
        # services start once, in the parent, and survive reloads.
        if not os.environ.get("RUN_MAIN"):
            host, _, port = options["addrport"].rpartition(":")
            if port.isdigit():  # anything else, runserver refuses with its own message
                web = ((host or "127.0.0.1").strip("[]"), int(port))
                ports_check(web=web, smtp=("127.0.0.1", settings.LOCAL_SMTP_PORT))
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
