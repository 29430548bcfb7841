"""System checks: digest settings, DMARC alignment, the schedule, and whether cron will really run the job."""

from pathlib import Path

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from digest.conf import digest_settings
from digest.crontab import CronSchedule, crontab_executable, crontab_installed_hashes, job_hash
from digest.deliverability.dmarc import organizational_domain
from digest.deliverability.findings import Level
from digest.deliverability.report import deliverability_check, domain_of, from_domains
from digest.rendering.dkim import dkim_signer, key_file_exposure
from digest.verp import bounce_address_check


def settings_check_all() -> None:
    """Every DIGEST_* setting, the DKIM key and the bounce address: ImproperlyConfigured names the first that is wrong.

    A run calls this before it sends, so a wrong setting stops it before any reader is mailed.
    """
    digest_settings.check_all()
    dkim_signer()  # reads the key once
    if digest_settings.BOUNCE_ADDRESS:
        bounce_address_check(digest_settings.BOUNCE_ADDRESS)


@checks.register("digest")
def check_settings(app_configs, **kwargs):
    """Every DIGEST_* setting is valid and the schedule parses."""
    errors = []
    try:
        settings_check_all()
    except ImproperlyConfigured as error:
        errors.append(checks.Error(str(error), id="digest.E001"))
    for job in getattr(settings, "CRONJOBS", []):
        try:
            CronSchedule.parse(job[0])
        except ValueError as error:
            errors.append(
                checks.Error(f"CRONJOBS schedule {error}", hint="Fix DIGEST_CRON_SCHEDULE.", id="digest.E002")
            )
    return errors


@checks.register("digest")
def check_dkim_key_file(app_configs, **kwargs):
    """The DKIM private key is readable by its owner only: anyone else who reads it can sign as the domain."""
    key_file = digest_settings.DKIM_KEY_FILE if digest_settings.DKIM_DOMAIN else ""
    exposure = key_file_exposure(Path(key_file)) if key_file else ""
    if not exposure:
        return []
    return [
        checks.Warning(
            f"DIGEST_DKIM_KEY_FILE: {exposure}: whoever reads it can sign mail as {digest_settings.DKIM_DOMAIN}.",
            hint=f"chmod 600 {key_file} (owned by the user that sends digests).",
            id="digest.W005",
        )
    ]


@checks.register("digest")
def check_alignment(app_configs, **kwargs):
    """DKIM's d= and the bounce domain share each From domain's organizational domain, or DMARC does not count them.

    Offline, from the settings and the newsletters alone (check_deliverability asks DNS, when
    enabled). DMARC passes when either aligns, but a d= or envelope sender of another
    organization is almost always a mistake, and Gmail and Yahoo want both from bulk senders.
    The organizational domain is digest.deliverability.dmarc's built-in rule.
    """
    names = {
        "DIGEST_DKIM_DOMAIN": digest_settings.DKIM_DOMAIN.lower(),
        "DIGEST_BOUNCE_ADDRESS": domain_of(digest_settings.BOUNCE_ADDRESS),
    }
    names = {setting: domain for setting, domain in names.items() if domain}
    if not names:
        return []
    try:
        domains = from_domains()
    except DatabaseError:  # before the first migrate: the default From is all there is
        domains = {domain_of(settings.DEFAULT_FROM_EMAIL): []}
    warnings = []
    for from_domain, newsletters in domains.items():
        who = f"the newsletters {', '.join(map(repr, newsletters))}" if newsletters else "DEFAULT_FROM_EMAIL"
        for setting, domain in names.items():
            if not from_domain or organizational_domain(domain) == organizational_domain(from_domain):
                continue
            what = "DKIM signature (d=)" if setting == "DIGEST_DKIM_DOMAIN" else "envelope sender (SPF)"
            warnings.append(
                checks.Warning(
                    f"{setting} is at {domain}, but the From domain of {who} is {from_domain}: the {what} does not align "
                    f"with the From domain ({organizational_domain(domain)} is not "
                    f"{organizational_domain(from_domain)}), so DMARC does not count it.",
                    hint=f"Use a domain under {organizational_domain(from_domain)} for {setting}, or send from "
                    f"an address under {organizational_domain(domain)}. Organizational domains are the last two "
                    "labels (three under suffixes such as co.uk).",
                    id="digest.W007" if setting == "DIGEST_DKIM_DOMAIN" else "digest.W008",
                )
            )
    return warnings


@checks.register("digest")
def check_site_url(app_configs, **kwargs):
    """Outside DEBUG, one-click unsubscribe URLs must be HTTPS (RFC 8058)."""
    if settings.DEBUG or settings.SITE_URL.startswith("https://"):
        return []
    return [
        checks.Warning(
            f"SITE_URL={settings.SITE_URL!r} is not HTTPS; mail providers ignore one-click unsubscribe links "
            "that are not (RFC 8058).",
            hint="Serve the site over HTTPS and set SITE_URL=https://….",
            id="digest.W004",
        )
    ]


@checks.register("digest")
def check_crontab(app_configs, **kwargs):
    """Outside DEBUG, warn when cron cannot run the digest job as configured.

    django-crontab exits 0 even when the crontab program is missing, and a crontab
    written for older CRONJOBS runs jobs that no longer exist; both fail silently.
    """
    if settings.DEBUG or not getattr(settings, "CRONJOBS", None):
        return []
    executable = crontab_executable()
    if executable is None:
        return [
            checks.Warning(
                f"The crontab program ({getattr(settings, 'CRONTAB_EXECUTABLE', '/usr/bin/crontab')}) is missing, "
                "so `manage.py crontab add` installs nothing and no digest is ever sent.",
                hint="Install cron (Debian: apt-get install cron), or run `manage.py run_scheduler` under a "
                "process supervisor instead.",
                id="digest.W001",
            )
        ]
    installed = crontab_installed_hashes(executable)
    expected = {job_hash(job) for job in settings.CRONJOBS}
    if not installed:
        return [
            checks.Warning(
                "The digest job is not in the crontab.",
                hint="Run `manage.py crontab add` (or use `manage.py run_scheduler`).",
                id="digest.W002",
            )
        ]
    if installed != expected:
        return [
            checks.Warning(
                "The crontab entries are stale: they were installed for different CRONJOBS settings.",
                # At the default verbosity django-crontab crashes trying to name the stale jobs.
                hint="Run `manage.py crontab add --verbosity 0`, which replaces them.",
                id="digest.W003",
            )
        ]
    return []


@checks.register("digest")
def check_deliverability(app_configs, **kwargs):
    """With DIGEST_DELIVERABILITY_CHECK=1, warn about each DNS mistake `manage.py deliverability_check` finds.

    Warnings, never errors: a DNS mistake must not stop the site or a migration from starting.
    """
    try:
        if not digest_settings.DELIVERABILITY_CHECK:
            return []
        try:
            domains = from_domains()
        except DatabaseError:  # before the first migrate: the default From is all there is
            domains = {domain_of(settings.DEFAULT_FROM_EMAIL): []}
        report = deliverability_check(domains=domains)
    except ImproperlyConfigured:
        return []  # check_settings names the setting
    return [
        checks.Warning(
            f"{finding.code}: {finding.message}",
            hint=f"Publish: {finding.publish}" if finding.publish else "Run `manage.py deliverability_check`.",
            id="digest.W006",
        )
        for finding in report.findings
        if finding.level in (Level.ERROR, Level.WARNING)
    ]
