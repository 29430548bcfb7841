import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from newsletters.devmail import capture_server_start


class Command(BaseCommand):
    help = "Run the site with a local SMTP server that captures all mail under var/mail (development only)."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, **options):
        # runserver's autoreloader re-runs this command in a child process (RUN_MAIN set);
        # services start once, in the parent, and survive reloads.
        if not os.environ.get("RUN_MAIN"):
            capture_server_start(directory=settings.LOCAL_MAIL_DIR, port=settings.LOCAL_SMTP_PORT)
            self.stdout.write(
                f"Local SMTP capture on 127.0.0.1:{settings.LOCAL_SMTP_PORT}; "
                f"read mail at {settings.SITE_URL}/dev/outbox/"
            )
        call_command("runserver", options["addrport"])
