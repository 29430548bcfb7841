from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from newsletters.exceptions import NewslettersError
from newsletters.importing import datetime_parse, issue_upsert_from_file
from newsletters.signals import issue_saved_from_file
from project.clock import db_now


class Command(BaseCommand):
    help = "Create or update an issue from a Markdown file with optional front matter."

    def add_arguments(self, parser):
        parser.add_argument(
            "file", type=Path, help="Markdown file; front matter keys: title, newsletter, publish_at, attachments, slug"
        )
        parser.add_argument("--newsletter", help="Newsletter slug (overrides the front matter)")
        parser.add_argument("--publish-at", help="ISO 8601 date-time; in the future it schedules the issue")
        parser.add_argument("--attach", type=Path, nargs="+", default=[], metavar="FILE", help="Files to attach")
        parser.add_argument("--draft", action="store_true", help="Save as a draft, not published")

    def handle(self, *args, **options):
        now = db_now()
        try:
            publish_at = (
                datetime_parse(options["publish_at"], what="--publish-at")
                if options["publish_at"] is not None
                else None
            )
            issue, created = issue_upsert_from_file(
                path=options["file"],
                now=now,
                newsletter_slug=options["newsletter"],
                publish_at=publish_at,
                attach=options["attach"],
                draft=options["draft"],
            )
        except NewslettersError as error:
            raise CommandError(str(error)) from None
        verb = "Created" if created else "Updated"
        when = f" for {issue.publish_at:%Y-%m-%d %H:%M %Z}" if issue.publish_at else ""
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {issue.state_at(now)} issue {issue.title!r} in {issue.newsletter.slug}{when}")
            + f" ({issue.attachments.count()} attachment(s), slug {issue.slug})."
        )
        for _, warnings in issue_saved_from_file.send(sender=type(self), issue=issue, now=now):
            for warning in warnings:
                self.stderr.write(self.style.WARNING(f"Warning: {warning}"))
