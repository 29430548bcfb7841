from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from digest.rendering.layout import templates_check
from newsletters.emails import email_themes


class Command(BaseCommand):
    help = (
        "Render every email template (the default, emails/themes/*, each newsletter's emails/<slug>/) on sample "
        "content and check the layout guarantees: doctype, dark-mode metas, tables, Outlook's wrapper, the postal "
        "address, the unsubscribe link. Writes nothing; exits 1 naming each template and what it lacks."
    )

    def handle(self, *args, **options):
        findings = templates_check(now=timezone.now())
        for finding in findings:
            self.stdout.write(self.style.ERROR(str(finding)))
        if findings:
            raise CommandError(f"{len(findings)} layout guarantees missing; see above.")
        themes = ", ".join(name or "default" for name in email_themes())
        self.stdout.write(self.style.SUCCESS(f"Every template keeps the layout guarantees ({themes})."))
