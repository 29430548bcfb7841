import datetime
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from newsletters.conf import site_url
from newsletters.exceptions import NewslettersError
from newsletters.importing import issue_source_parse, issue_upsert_from_file
from newsletters.models import Issue, Subscription
from newsletters.roles import EDITOR
from newsletters.subscribers_csv import csv_file_read, subscribers_import

DEMO = settings.BASE_DIR / "fixtures" / "demo"


def editor_password(path: Path) -> str:
    """Return the demo editor's password kept in the file, making and storing one the first time."""
    if path.is_file() and (kept := path.read_text(encoding="utf-8").strip()):
        return kept
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Readable by its owner only: it logs into an admin account.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    return password


class Command(BaseCommand):
    help = (
        "Load the demo newsletters, issues and subscribers, and create an 'editor' login (an Editor, not a superuser)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-editor", action="store_true", help="Do not create or reset the editor login")

    def handle(self, *args, **options):
        now = timezone.now()
        call_command("loaddata", DEMO / "newsletters.json", verbosity=0)
        paths = sorted((DEMO / "issues").glob("*.md"))
        for position, path in enumerate(paths):
            source = issue_source_parse(text=path.read_text(encoding="utf-8"), path=path)
            exists = Issue.objects.filter(newsletter__slug=source.newsletter, slug=source.slug).exists()
            # The last file stays a draft, the one before is scheduled for tomorrow, the rest
            # are spread over the past days. An issue already loaded keeps its time.
            days_ago = len(paths) - 3 - position
            try:
                issue, created = issue_upsert_from_file(
                    path=path,
                    now=now,
                    publish_at=None if exists else now - datetime.timedelta(days=days_ago, hours=1),
                    draft=position == len(paths) - 1,
                )
            except NewslettersError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(
                f"  {'created' if created else 'kept   '} {issue.state:9} {issue.newsletter.slug}/{issue.slug}"
            )
        report = subscribers_import(text=csv_file_read(DEMO / "subscribers.csv"), confirmed=True, now=now)
        self.stdout.write(f"Subscribers: {report.summary()}")
        # The demo readers subscribed a week ago, so the first digest run has something to send.
        Subscription.objects.filter(newsletter__slug__in=["django-weekly", "ops-bulletin"], cursor__isnull=True).update(
            created_at=now - datetime.timedelta(days=8)
        )
        if not options["no_editor"]:
            # The same password on every run, so a browser's saved login keeps working.
            password_file = Path(settings.VAR_DIR) / "demo-editor-password"
            password = editor_password(password_file)
            user, _ = get_user_model().objects.get_or_create(username="editor", defaults={"email": "editor@localhost"})
            # An editor, not a superuser: what a newsletter's writers get (newsletters.roles).
            user.is_staff, user.is_superuser = True, False
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=EDITOR))
            self.stdout.write(
                self.style.SUCCESS(f"Editor login: editor / {password}  (admin at {site_url('/admin/')})")
            )
            self.stdout.write(f"  The password is kept in {password_file}; delete the file for a new one.")
