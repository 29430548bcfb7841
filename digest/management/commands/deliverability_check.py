from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from digest.deliverability.findings import Level
from digest.deliverability.report import deliverability_check


def _counted(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 or word in ('info', 'ok') else 's'}"


class Command(BaseCommand):
    help = (
        "Check the DNS of every newsletter's From domain as receivers will: SPF covers the relay, the DKIM key, "
        "DMARC and alignment, the bounce domain's MX, MTA-STS and TLS-RPT. Prints what to publish; exits 1 on errors."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--one-click",
            action="store_true",
            help="Also POST to SITE_URL's one-click unsubscribe endpoint as mail providers do (needs the site reachable)",
        )

    def handle(self, *args, **options):
        try:
            report = deliverability_check(one_click=options["one_click"])
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        styles = {Level.ERROR: self.style.ERROR, Level.WARNING: self.style.WARNING, Level.OK: self.style.SUCCESS}
        for section in report.sections:
            self.stdout.write(self.style.MIGRATE_HEADING(section.title))
            for finding in section.findings:
                level = styles.get(finding.level, str)(f"{finding.level:<8}")
                self.stdout.write(f"  {level} {finding.code}  {finding.message}")
                if finding.publish:
                    self.stdout.write(f"           publish: {finding.publish}")
        counts = report.counts()
        self.stdout.write(", ".join(_counted(number, level) for level, number in counts.items()))
        if report.failed:
            raise CommandError(f"{_counted(counts['error'], 'error')}: digests may be rejected.", returncode=1)
