from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from newsletters.exceptions import NewslettersError
from newsletters.subscribers_csv import IMPORT_COLUMNS, csv_file_read, subscribers_import
from project.progress import Progress


class Command(BaseCommand):
    help = f"Import subscribers from CSV with columns {', '.join(IMPORT_COLUMNS)}; one row per subscription."

    def add_arguments(self, parser):
        parser.add_argument("csv", type=Path)
        parser.add_argument(
            "--confirmed",
            action="store_true",
            help="The addresses already opted in: activate them (no confirmation mail)",
        )

    def handle(self, *args, **options):
        try:
            text = csv_file_read(options["csv"])
            with Progress(what="importing", unit="rows", stream=self.stdout) as progress:
                report = subscribers_import(
                    text=text, confirmed=options["confirmed"], now=timezone.now(), progress=progress.update
                )
        except NewslettersError as error:
            raise CommandError(str(error)) from None
        for line in report.errors:
            self.stderr.write(self.style.WARNING(line))
        self.stdout.write(report.summary())
