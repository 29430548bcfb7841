"""Local mail capture for development: an SMTP server that stores messages, and a reader.

`manage.py devserver` runs `capture_server_start()`; the DEBUG-only outbox pages read
what it stored with `outbox_list()` and `outbox_read()`.
"""

import email
import email.policy
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from django.utils import timezone

_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{32}\.eml$")


class StoreHandler:
    """aiosmtpd handler that writes each message, as received, to a .eml file."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        name = f"{timezone.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex}.eml"
        # Write then rename, so the outbox page never reads half a message.
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(envelope.original_content or envelope.content)
        os.replace(tmp, self.directory / name)
        return "250 Message accepted for delivery"


def capture_server_start(*, directory: Path, port: int, hostname: str = "127.0.0.1") -> Controller:
    """Start the capture SMTP server in a background thread and return its controller."""
    controller = Controller(StoreHandler(directory), hostname=hostname, port=port)
    controller.start()
    return controller


@dataclass(frozen=True)
class StoredMessage:
    """A captured message, parsed for display."""

    name: str
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def sender(self) -> str:
        return str(self.message.get("From", ""))

    @property
    def date(self) -> str:
        return str(self.message.get("Date", ""))

    def part(self, subtype: str) -> str | None:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None and body.get_content_subtype() == subtype else None

    @property
    def attachments(self) -> list[tuple[str, str, int]]:
        return [
            (part.get_filename() or "(unnamed)", part.get_content_type(), len(part.get_payload(decode=True) or b""))
            for part in self.message.iter_attachments()
        ]


def outbox_list(directory: Path, *, limit: int = 200) -> list[StoredMessage]:
    """Return the newest captured messages first."""
    if not directory.is_dir():
        return []
    names = sorted((p.name for p in directory.iterdir() if _NAME.match(p.name)), reverse=True)[:limit]
    return [outbox_read(directory, name) for name in names]


def outbox_read(directory: Path, name: str) -> StoredMessage:
    """Parse one captured message; only names the capture server writes are accepted."""
    if not _NAME.match(name):
        raise FileNotFoundError(name)
    with (directory / name).open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    return StoredMessage(name=name, message=message)
