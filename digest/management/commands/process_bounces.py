import functools
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from digest.returns.mailboxes import (
    MailboxError,
    imap_read,
    mailbox_read,
    maildir_read,
    mbox_read,
    pop3_read,
    stream_read,
)
from digest.returns.returned import returned_read, summary_line

# sysexits.h EX_TEMPFAIL: an MTA's pipe transport keeps the message and tries again.
EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = (
        "Read returned mail (bounces, complaints) and apply the bounce policy. Without a source, "
        "reads the mailbox at BOUNCE_MAILBOX_URL."
    )

    def add_arguments(self, parser):
        sources = parser.add_mutually_exclusive_group()
        sources.add_argument("--imap", metavar="URL", help="imaps://user:pass@host/INBOX[?move=Folder]")
        sources.add_argument("--pop3", metavar="URL", help="pop3s://user:pass@host/[?delete=yes]")
        sources.add_argument("--maildir", metavar="DIR", type=Path, help="a Maildir (new/, cur/)")
        sources.add_argument("--mbox", metavar="FILE", type=Path, help="an mbox file")
        sources.add_argument("stdin", nargs="?", choices=["-"], help="'-': one message on standard input")

    def handle(self, *args, **options):
        if options["imap"]:
            read, source = functools.partial(imap_read, options["imap"]), "imap"
        elif options["pop3"]:
            read, source = functools.partial(pop3_read, options["pop3"]), "pop3"
        elif options["maildir"]:
            read, source = functools.partial(maildir_read, options["maildir"]), "maildir"
        elif options["mbox"]:
            read, source = functools.partial(mbox_read, options["mbox"]), "mbox"
        elif options["stdin"]:
            read, source = functools.partial(stream_read, sys.stdin.buffer), "stdin"
        elif settings.BOUNCE_MAILBOX_URL:
            read, source = functools.partial(mailbox_read, settings.BOUNCE_MAILBOX_URL), "mailbox"
        else:
            raise CommandError("Name a source (--imap, --pop3, --maildir, --mbox or -) or set BOUNCE_MAILBOX_URL.")
        try:
            counts = returned_read(read, source=source, now=timezone.now(), progress=self.stdout.write)
        except MailboxError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            if source == "stdin":
                self.stderr.write(f"Cannot record the message, try again later: {error}")
                sys.exit(EX_TEMPFAIL)
            raise
        self.stdout.write(self.style.SUCCESS(summary_line(counts)))
