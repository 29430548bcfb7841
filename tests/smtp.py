"""A real SMTP server for tests: aiosmtpd on a free loopback port."""

import asyncio
import email
import email.policy
import selectors
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class RecordingHandler:
    """Store every accepted message; `replies` maps a recipient to a forced SMTP reply."""

    received: list[Received] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Hang up (once) after accepting this many messages, as a server restarting would.
    drop_after: int | None = None
    connections: int = 0
    # Offer PIPELINING (RFC 2920); aiosmtpd reads pipelined commands in order either way.
    pipelining: bool = False
    # Answer every DATA with this reply instead of accepting the message.
    data_reply: str | None = None
    # Answer the first this-many MAIL commands with 454 (SES's throttling reply).
    throttle_first: int = 0
    mails: int = 0
    # Answer the first this-many messages' final dot with 454 instead of accepting them.
    throttle_data_first: int = 0
    datas: int = 0
    # Answer 421 to a new connection while this many are open (None: no limit).
    max_connections: int | None = None
    # Beyond this many open connections, hold new ones without a greeting, as a relay whose
    # process limit is reached leaves them queued (smtp-sink, Postfix's default_process_limit).
    greet_at_most: int | None = None
    open_connections: int = 0
    most_open: int = 0
    refused_connections: int = 0
    silent_connections: int = 0
    # Every connection's TLS state at MAIL time: True once STARTTLS was done.
    tls_at_mail: list = field(default_factory=list)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.mails += 1
            throttled = self.mails <= self.throttle_first
            self.tls_at_mail.append(session.ssl is not None)
        if throttled:
            return "454 4.7.0 Throttling failure: Maximum sending rate exceeded."
        reply = self.replies.get(address)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.datas += 1
            if self.datas <= self.throttle_data_first:
                return "454 4.7.0 Throttling failure: Maximum sending rate exceeded."
            if self.drop_after is not None and len(self.received) == self.drop_after:
                # Hang up mid-transaction without an answer: the message is not accepted.
                self.drop_after = None
                server.transport.abort()
                return "421 Gone"
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


@dataclass
class BlockingHandler(RecordingHandler):
    """Hold message number `block_at` until released, as a slow server would."""

    block_at: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):
        if len(self.received) + 1 == self.block_at:
            self.reached.set()
            await asyncio.to_thread(self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class GateHandler(RecordingHandler):
    """Accept every message; once `close_at` have arrived, hold every reply until the gate reopens.

    While closed, each connection of each sender has a message the server accepted but
    whose reply is on its way: the worst moment to kill a sender. `reached` is set once
    `hold_count` replies are held.
    """

    close_at: int | None = None
    hold_count: int = 1
    held: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    _open: threading.Event = field(default_factory=threading.Event)

    def close(self, *, at: int, hold_count: int) -> None:
        """Hold replies from message number `at` on, until reopen()."""
        with self.lock:
            self.close_at, self.hold_count, self.held = at, hold_count, 0
            self.reached.clear()
            self._open = threading.Event()

    def reopen(self) -> None:
        with self.lock:
            self.close_at = None
            self._open.set()

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        with self.lock:
            gate = self._open if self.close_at is not None and len(self.received) >= self.close_at else None
            if gate is not None:
                self.held += 1
                if self.held >= self.hold_count:
                    self.reached.set()
        if gate is not None:
            await asyncio.to_thread(gate.wait, 60)
        return reply


@dataclass
class SlowReplyHandler(RecordingHandler):
    """Accept every message, but past the first `hold_after` hold the reply until released.

    A client killed while waiting has had its message accepted without knowing it: the
    in-flight message a resend may duplicate.
    """

    hold_after: int = 0
    hold_count: int = 1
    held: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        with self.lock:
            hold = len(self.received) > self.hold_after
            if hold:
                self.held += 1
                if self.held >= self.hold_count:
                    self.reached.set()
        if hold:
            await asyncio.to_thread(self.release.wait, 60)
        return reply


class _LimitedSMTP(SMTP):
    """aiosmtpd's server, answering 421 to connections beyond the handler's max_connections."""

    def connection_made(self, transport):
        handler = self.event_handler
        with handler.lock:
            refuse = handler.max_connections is not None and handler.open_connections >= handler.max_connections
            silent = handler.greet_at_most is not None and handler.open_connections >= handler.greet_at_most
            if refuse:
                handler.refused_connections += 1
            elif silent:
                handler.silent_connections += 1
            else:
                handler.open_connections += 1
                handler.most_open = max(handler.most_open, handler.open_connections)
        if refuse:
            self._refused = True
            transport.write(b"421 4.7.0 Too many connections from your host\r\n")
            transport.close()
            return
        if silent:
            self._refused = True  # held open, never greeted, until the client gives up
            return
        super().connection_made(transport)

    def data_received(self, data):
        if not getattr(self, "_refused", False):
            super().data_received(data)

    def eof_received(self):
        if getattr(self, "_refused", False):
            return False  # no SMTP session began: let the transport close
        return super().eof_received()

    def connection_lost(self, error):
        if getattr(self, "_refused", False):
            return  # no SMTP session began: nothing of aiosmtpd's to tear down
        with self.event_handler.lock:
            self.event_handler.open_connections -= 1
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self):
        return _LimitedSMTP(self.handler, **self.SMTP_kwargs)


class TurnCounter:
    """A TCP proxy in front of a server that counts the client's turns to speak.

    A turn starts each time the client sends after the server last spoke: the round trips
    a sender waits for, which is what a far relay makes expensive. Used as a context
    manager; `port` is where to connect.
    """

    def __init__(self, port: int):
        self.target = port
        self.turns = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "TurnCounter":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._listener.close()
        for thread in self._threads:
            thread.join(10)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.target))
        peers = {client: server, server: client}
        last = server  # the server speaks first (its greeting)
        with client, server, selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    sock = key.fileobj
                    data = sock.recv(1 << 20)
                    if not data:
                        return
                    if sock is client and last is server:
                        with self._lock:
                            self.turns += 1
                    last = sock
                    peers[sock].sendall(data)


class SMTPServer:
    """Start and stop a recording aiosmtpd server; its mailer config plugs into MAILERS.

    With `tls=(certfile, keyfile)` it offers STARTTLS and requires it before MAIL.
    """

    def __init__(self, handler: RecordingHandler | None = None, *, tls: tuple[str, str] | None = None):
        self.handler = handler or RecordingHandler()
        self.port = free_port()
        kwargs = {}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            kwargs = {"tls_context": context, "require_starttls": True}
        self.tls = bool(tls)
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def url(self) -> str:
        """The EMAIL_URL of this server, for sender processes."""
        return f"smtp://127.0.0.1:{self.port}?timeout=30"

    def mailer(self) -> dict:
        options = {"host": "127.0.0.1", "port": self.port, "timeout": 10}
        if self.tls:
            options["use_tls"] = True
        return {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}


class SigningEmailBackend(SMTPBackend):
    """A subclass of Django's SMTP backend that changes every message in send_messages (as a DKIM signer would)."""

    def send_messages(self, email_messages):
        for message in email_messages:
            message.extra_headers["X-Signed-By"] = "tests"
        return super().send_messages(email_messages)


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """Make a throwaway certificate and key for 127.0.0.1 (openssl); return their paths."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)
