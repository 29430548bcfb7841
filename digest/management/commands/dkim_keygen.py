from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from digest.conf import digest_settings
from digest.rendering.dkim import dns_zone_line, key_create, key_file_exposure, names_check, private_key_load


class Command(BaseCommand):
    help = (
        "Make an RSA key for DKIM signing of digests and print the DNS TXT record to publish. "
        "An existing key file is kept: the record of its key is printed."
    )
    # The system checks read the key DIGEST_DKIM_KEY_FILE names (digest.E001 while it is
    # missing), so with the settings exported first they would stop the command that makes it.
    # It checks the names it uses itself.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--domain", default=None, help="The d= domain (default: DIGEST_DKIM_DOMAIN)")
        parser.add_argument("--selector", default=None, help="The selector (default: DIGEST_DKIM_SELECTOR)")
        parser.add_argument("--key-file", default=None, help="Where the PEM key goes (default: DIGEST_DKIM_KEY_FILE)")
        parser.add_argument("--bits", type=int, default=2048, choices=[2048, 3072, 4096], help="Key size (2048)")

    def handle(self, *args, **options):
        values = {
            "--domain": options["domain"] or digest_settings.DKIM_DOMAIN,
            "--selector": options["selector"] or digest_settings.DKIM_SELECTOR,
            "--key-file": options["key_file"] or digest_settings.DKIM_KEY_FILE,
        }
        for option, value in values.items():
            if not value:
                setting = "DIGEST_DKIM_" + option.removeprefix("--").replace("-", "_").upper()
                raise CommandError(f"Give {option} or set {setting}.")
        domain, selector, path = values["--domain"].lower(), values["--selector"], Path(values["--key-file"])
        try:
            names_check(domain=domain, selector=selector)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        if path.exists() and not path.is_file():  # reading a FIFO would wait for ever
            raise CommandError(f"{path} is not a regular file (a FIFO, a device or a directory).")
        if path.exists():
            try:
                key = private_key_load(path.read_bytes(), setting=str(path))
            except (OSError, ImproperlyConfigured) as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"{path} exists: kept. The record of its key:")
            if exposure := key_file_exposure(path):
                self.stderr.write(f"Warning: {exposure}; make it readable by its owner only: chmod 600 {path}")
        else:
            try:
                key = key_create(path, bits=options["bits"])
            except OSError as error:
                raise CommandError(f"Cannot write {path}: {error.strerror}.") from None
            self.stdout.write(f"Wrote a new {options['bits']}-bit RSA key to {path} (readable by its owner only).")
        self.stdout.write("Publish this DNS TXT record:\n")
        self.stdout.write(dns_zone_line(domain=domain, selector=selector, key=key) + "\n")
        if (domain, selector, str(path)) == (
            digest_settings.DKIM_DOMAIN.lower(),
            digest_settings.DKIM_SELECTOR,
            digest_settings.DKIM_KEY_FILE,
        ):
            self.stdout.write("These settings are in place here; set them for every process that sends digests:")
        else:
            self.stdout.write("Then set, for every process that sends digests:")
        self.stdout.write(
            f"DIGEST_DKIM_DOMAIN={domain}\nDIGEST_DKIM_SELECTOR={selector}\nDIGEST_DKIM_KEY_FILE={path.resolve()}"
        )
