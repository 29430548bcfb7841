"""Where returned mail is read from: an IMAP or POP3 mailbox, a Maildir, an mbox file, a stream.

Each reader hands every message to `handle(raw, size)` (raw is None when the mailbox says
the message is larger than DIGEST_BOUNCE_MAX_BYTES: it is not downloaded) and marks it
handled only after `handle` returned, so a message is never lost: IMAP flags it (\\Seen
and the keyword DigestProcessed) or moves it to the folder named by `?move=`; a Maildir
message moves to cur/ with the S flag; POP3 deletes it only with `?delete=yes`. Messages
read twice (an mbox, a POP3 box kept) are not counted twice: the policy's fingerprints
see to that.
"""

import imaplib
import os
import poplib
import re
import ssl
from collections.abc import Callable
from mailbox import mbox
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from digest.conf import digest_settings
from digest.exceptions import DigestError

Handle = Callable[[bytes | None, int], object]
KEYWORD = "DigestProcessed"
_TIMEOUT = 60


class MailboxError(DigestError):
    """A mailbox cannot be read: a wrong URL, a refused login, a missing folder."""


def mailbox_read(url: str, handle: Handle) -> None:
    """Read the IMAP or POP3 mailbox at a URL (imap[s]:// or pop3[s]://), by its scheme."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("imap", "imaps"):
        imap_read(url, handle)
    elif scheme in ("pop3", "pop3s", "pop", "pops"):
        pop3_read(url, handle)
    else:
        raise MailboxError(f"{_redacted(url)}: the URL must start with imaps://, imap://, pop3s:// or pop3://")


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{parts.username or ''}{'@' if parts.username else ''}{host}{parts.path}"


def _parts(url: str, *, secure: bool, default_port: int, secure_port: int):
    parts = urlsplit(url)
    if not parts.hostname or parts.username is None or parts.password is None:
        raise MailboxError(f"{_redacted(url)}: the URL needs a user, a password and a host (scheme://user:pass@host/)")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    port = parts.port or (secure_port if secure else default_port)
    return parts.hostname, port, unquote(parts.username), unquote(parts.password), parts.path, options


def imap_read(url: str, handle: Handle) -> None:
    """Read every message not yet handled in an IMAP folder (imaps://user:pass@host/INBOX[?move=Folder])."""
    secure = urlsplit(url).scheme.lower() == "imaps"
    host, port, user, password, path, options = _parts(url, secure=secure, default_port=143, secure_port=993)
    folder = unquote(path.lstrip("/")) or "INBOX"
    move_to = options.get("move", "")
    for name in (folder, move_to):
        if any(ord(char) < 32 or ord(char) == 127 for char in name):
            # A CR or LF would end the IMAP command and start another one on the server.
            raise MailboxError(f"{_redacted(url)}: the folder {name!r} holds a control character (CR, LF…)")
    try:
        if secure:
            client = imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(), timeout=_TIMEOUT)
        else:
            client = imaplib.IMAP4(host, port, timeout=_TIMEOUT)
            if "STARTTLS" in client.capabilities:
                client.starttls(ssl.create_default_context())
    except (OSError, imaplib.IMAP4.error) as error:
        raise MailboxError(f"{_redacted(url)}: cannot connect: {error}") from None
    try:
        try:
            client.login(user, password)
            _imap_ok(client.select(_quoted(folder)), f"cannot open folder {folder!r}")
            if move_to:
                _imap_folder_create(client, move_to)
            criteria = "ALL" if move_to else f"UNKEYWORD {KEYWORD}"
            uids = _imap_ok(client.uid("SEARCH", None, criteria), "cannot search")[0].split()
            for uid in uids:
                _imap_one(client, uid.decode("ascii"), handle, move_to=move_to)
            if move_to and uids:
                client.expunge()
        except imaplib.IMAP4.error as error:
            raise MailboxError(f"{_redacted(url)}: {error}") from None
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _imap_one(client: imaplib.IMAP4, uid: str, handle: Handle, *, move_to: str) -> None:
    sizes = _imap_ok(client.uid("FETCH", uid, "(RFC822.SIZE)"), f"cannot read the size of message {uid}")
    found = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(item for item in sizes if isinstance(item, bytes)))
    size = int(found.group(1)) if found else 0
    raw = None
    if size <= digest_settings.BOUNCE_MAX_BYTES:
        data = _imap_ok(client.uid("FETCH", uid, "(BODY.PEEK[])"), f"cannot fetch message {uid}")
        raw = next((item[1] for item in data if isinstance(item, tuple)), b"")
    handle(raw, size)
    if move_to:
        if "MOVE" in client.capabilities:
            _imap_ok(client.uid("MOVE", uid, _quoted(move_to)), f"cannot move message {uid}")
            return
        _imap_ok(client.uid("COPY", uid, _quoted(move_to)), f"cannot copy message {uid}")
        _imap_ok(client.uid("STORE", uid, "+FLAGS", "(\\Deleted)"), f"cannot flag message {uid}")
    else:
        _imap_ok(client.uid("STORE", uid, "+FLAGS", f"(\\Seen {KEYWORD})"), f"cannot flag message {uid}")


def _imap_folder_create(client: imaplib.IMAP4, folder: str) -> None:
    status, listed = client.list('""', _quoted(folder))
    if status == "OK" and listed and listed[0]:
        return
    _imap_ok(client.create(_quoted(folder)), f"cannot create folder {folder!r}")


def _imap_ok(reply, what: str):
    status, data = reply
    if status != "OK":
        detail = b" ".join(item for item in data if isinstance(item, bytes)).decode("utf-8", "replace")
        raise MailboxError(f"{what}: {detail}")
    return data


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _LongLines:
    """RETR of lines as long as a returned message may hold (poplib refuses lines over 2048 bytes).

    Otherwise one message with a long line breaks the session before it is handled, on every run.
    """

    def _getline(self) -> tuple[bytes, int]:
        limit = digest_settings.BOUNCE_MAX_BYTES
        line = self.file.readline(limit + 1)
        if len(line) > limit:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        if line.endswith(b"\r\n"):
            return line[:-2], len(line)
        return line.rstrip(b"\r\n"), len(line)


class _POP3(_LongLines, poplib.POP3):
    pass


class _POP3SSL(_LongLines, poplib.POP3_SSL):
    pass


def pop3_read(url: str, handle: Handle) -> None:
    """Read every message in a POP3 mailbox (pop3s://user:pass@host/[?delete=yes])."""
    secure = urlsplit(url).scheme.lower() in ("pop3s", "pops")
    host, port, user, password, _, options = _parts(url, secure=secure, default_port=110, secure_port=995)
    delete = options.get("delete", "").lower() in ("1", "yes", "true")
    try:
        if secure:
            client = _POP3SSL(host, port, context=ssl.create_default_context(), timeout=_TIMEOUT)
        else:
            client = _POP3(host, port, timeout=_TIMEOUT)
            try:
                client.stls(ssl.create_default_context())
            except poplib.error_proto:
                pass  # the server offers no STLS: plain, as the URL asked
        client.user(user)
        client.pass_(password)
    except (OSError, poplib.error_proto) as error:
        raise MailboxError(f"{_redacted(url)}: {error}") from None
    try:
        _, listing, _ = client.list()
        for line in listing:
            number, size = (int(value) for value in line.split()[:2])
            raw = None
            if size <= digest_settings.BOUNCE_MAX_BYTES:
                raw = b"\r\n".join(client.retr(number)[1]) + b"\r\n"
            handle(raw, size)
            if delete:
                client.dele(number)
        client.quit()  # deletions take effect only here
    except (OSError, poplib.error_proto) as error:
        raise MailboxError(f"{_redacted(url)}: {error}") from None
    finally:
        client.close()


def maildir_read(directory: Path, handle: Handle) -> None:
    """Read every message in a Maildir not yet seen (new/, and cur/ without the S flag)."""
    if not (directory / "new").is_dir() or not (directory / "cur").is_dir():
        raise MailboxError(f"{directory} is not a Maildir (it has no new/ and cur/)")
    for subdir in ("new", "cur"):
        for path in sorted((directory / subdir).iterdir()):
            name, _, info = path.name.partition(":")
            flags = info[2:] if info.startswith("2,") else ""
            if path.name.startswith(".") or "S" in flags or not path.is_file():
                continue
            size = path.stat().st_size
            handle(path.read_bytes() if size <= digest_settings.BOUNCE_MAX_BYTES else None, size)
            os.replace(path, directory / "cur" / f"{name}:2,{''.join(sorted(flags + 'S'))}")


def mbox_read(path: Path, handle: Handle) -> None:
    """Read every message of an mbox file (nothing is marked: re-reading counts nothing twice)."""
    if not path.is_file():
        raise MailboxError(f"{path} is not a file")
    box = mbox(path, create=False)
    try:
        for key in box.iterkeys():
            raw = box.get_bytes(key, from_=False)
            handle(raw if len(raw) <= digest_settings.BOUNCE_MAX_BYTES else None, len(raw))
    finally:
        box.close()


def stream_read(stream: BinaryIO, handle: Handle) -> None:
    """Read one message from a stream (standard input, from an MTA's pipe transport)."""
    limit = digest_settings.BOUNCE_MAX_BYTES
    raw = stream.read(limit + 1)
    size = len(raw)
    if size > limit:
        while chunk := stream.read(1 << 20):  # drain it, so the MTA sees it delivered
            size += len(chunk)
        handle(None, size)
        return
    handle(raw, size)
