import argparse
import dataclasses
import json

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from digest.exceptions import DigestError
from digest.processes import sender_run
from digest.run import digest_run
from newsletters.exceptions import NewslettersError
from newsletters.importing import datetime_parse
from project.clock import db_now
from project.progress import Progress


class Command(BaseCommand):
    help = "Send every digest that is due: one email per due subscription, gathering its new issues."

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", help="Replay this moment (ISO 8601) instead of the current time (the database's clock)"
        )
        parser.add_argument("--dry-run", action="store_true", help="Report what would be sent; send and change nothing")
        parser.add_argument("--newsletter", metavar="SLUG", help="Only this newsletter")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Wait until the workers have run the send tasks, and print the whole summary",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the summary as one JSON object (progress goes to stderr)"
        )
        parser.add_argument(
            "--processes",
            default="auto",
            metavar="N",
            help="Send with N processes of this machine after planning; auto (the default): one per CPU on "
            "PostgreSQL, one on SQLite",
        )
        # One of the processes a run starts (digest.processes): send what is planned, print the counts as JSON.
        parser.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        if options["processes"] != "auto" and not options["processes"].isdigit():
            raise CommandError(f"--processes {options['processes']!r}: a number of processes, or auto.")
        try:
            now = datetime_parse(options["now"], what="--now") if options["now"] is not None else db_now()
            if options["sender"]:
                self.stdout.write(json.dumps(sender_run(now=now, newsletter_slug=options["newsletter"])))
                return
            stream = self.stderr if options["json"] else self.stdout
            with Progress(what="sending", unit="digests", stream=stream) as progress:
                summary = digest_run(
                    now=now,
                    dry_run=options["dry_run"],
                    newsletter_slug=options["newsletter"],
                    progress=progress.note,
                    on_batch=progress.update,
                    wait=options["wait"],
                    processes=options["processes"],
                )
        except (DigestError, NewslettersError) as error:
            raise CommandError(str(error)) from None
        except (RedisConnectionError, RedisTimeoutError) as error:
            # Only the RQ task backend talks to Redis here (TASKS_URL=rq://); the work not enqueued stays due.
            raise CommandError(f"TASKS_URL: cannot reach Redis to enqueue the send tasks: {error}") from None
        if options["json"]:
            self.stdout.write(json.dumps(dataclasses.asdict(summary)))
            return
        style = self.style.ERROR if summary.failed else self.style.SUCCESS
        self.stdout.write(style(str(summary)))
