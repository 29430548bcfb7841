from django.core.management.base import BaseCommand, CommandError

from hooks.delivery import endpoints_deliver
from newsletters.exceptions import NewslettersError
from newsletters.importing import datetime_parse
from project.clock import db_now


class Command(BaseCommand):
    help = "Deliver every webhook event that is due, here and now, and print the counts."

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", help="Act as at this moment (ISO 8601) instead of the current time (the database's clock)"
        )

    def handle(self, *args, **options):
        try:
            now = datetime_parse(options["now"], what="--now") if options["now"] is not None else db_now()
        except NewslettersError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(str(endpoints_deliver(now=now)))
