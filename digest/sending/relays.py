"""The relays a pool sends through, and its connections to them.

Every connection is a backend of a configured Django mailer (`mailers[alias]`), so its
host, port, TLS or SSL, credentials and timeout apply. Aliases in DIGEST_MAILERS are used
round-robin; a relay that refuses connections is skipped for a while and tried again. A
relay that answers 421 when a connection opens has too many of ours: the pool shrinks by
that connection for the rest of the run, and tries one more again a while later. So does
one that leaves a new connection without a greeting until the mailer's timeout while
answering our others (at its process limit, smtp-sink and Postfix queue further
connections unanswered).
"""

import logging
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.mail import mailers

from digest.sending.smtp import fast_path_for, no_delay

logger = logging.getLogger(__name__)


# How long a relay that refused a connection is skipped, and how long after a relay had too
# many of our connections the pool tries one more again.
RELAY_RETRY_SECONDS = 30.0


# Seconds a relay may take to greet or answer, for mailers that set no timeout of their own.
DEFAULT_TIMEOUT = 30.0


class RateLimiter:
    """At most `rate` messages a second across every connection of the pool (0: no limit)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return when the next message may start."""
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            start = max(self._next, now)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


@dataclass
class Relay:
    alias: str
    down_until: float = 0.0
    answered_at: float = float("-inf")  # when it last answered a message on any connection of ours


@dataclass
class Connection:
    relay: Relay
    backend: object = None
    opened: bool = False
    retired: bool = False  # taken out of the pool for this run: the relay serves no more of ours

    def close(self) -> None:
        """Close an idle connection politely (QUIT)."""
        if self.backend is None:
            return
        try:
            self.backend.close()
        except (smtplib.SMTPException, OSError):
            self.backend.connection = None
        self.opened = False

    def abort(self) -> None:
        """Close the connection in any state at once: the socket, with no QUIT that could land inside a message."""
        if self.backend is None:
            return
        smtp = getattr(self.backend, "connection", None)
        if isinstance(smtp, smtplib.SMTP):
            try:
                smtp.close()
            except OSError:
                pass
            self.backend.connection = None
        else:
            self.close()  # not SMTP (an ESP's HTTP API): nothing can be half-written
        self.opened = False


@dataclass
class PoolStats:
    """What the pool did in a run, for the summary and the benchmark."""

    opened: int = 0
    most_at_once: int = 0
    shrunk: int = 0
    regrown: int = 0
    throttled: int = 0
    relays_down: set = field(default_factory=set)


class Relays:
    """Where a pool's connections go: the relays in turn, idle connections kept, at most `size` wanted."""

    def __init__(self, aliases: list[str], *, size: int, stats: PoolStats, clock: Callable[[], float]):
        self.relays = [Relay(alias) for alias in aliases]
        self.size = self.configured_size = size
        self.stats, self.clock = stats, clock
        self._shrunk_at = float("-inf")
        self._idle: list[Connection] = []
        self._next_relay = 0
        self._lock = threading.Lock()

    @property
    def fast(self) -> bool:
        """Whether every relay is exactly Django's SMTP backend, so the fast path may write to it."""
        return all(fast_path_for(mailers[relay.alias]) for relay in self.relays)

    def template(self):
        """A backend of the first relay, unopened: for what does not need a connection (address parsing)."""
        return mailers[self.relays[0].alias]

    def checkout(self) -> Connection:
        """An idle connection, or a new one (unopened) to the next relay."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            relay = self.relays[self._next_relay % len(self.relays)]
            self._next_relay += 1
        return Connection(relay)

    def checkin(self, connection: Connection) -> None:
        """Keep a connection for the next batch: only in a known idle state (no reply unread)."""
        with self._lock:
            self._idle.append(connection)

    def ready(self, connection: Connection) -> bool:
        """Open the connection if needed, on its relay or the next one up; False if it should go away."""
        # Django's SMTP backend drops its smtplib object when closed; other backends have none.
        if connection.retired:
            return False
        if connection.opened and getattr(connection.backend, "connection", True) is not None:
            return True
        for _ in range(len(self.relays)):
            relay = connection.relay
            if relay.down_until <= self.clock():
                started = self.clock()
                try:
                    connection.backend = mailers[relay.alias]
                    if getattr(connection.backend, "timeout", 0) is None:
                        connection.backend.timeout = DEFAULT_TIMEOUT  # never wait for a silent relay forever
                    connection.backend.open()
                    no_delay(connection.backend)
                    connection.opened = True
                    with self._lock:
                        self.stats.opened += 1
                    return True
                except smtplib.SMTPConnectError as error:
                    if error.smtp_code == 421 and self._shrink():
                        logger.info("Relay %s has too many of our connections (%s): one fewer", relay.alias, error)
                        connection.retired = True
                        return False
                    self._relay_down(relay, error)
                except smtplib.SMTPServerDisconnected as error:
                    # No greeting within the mailer's timeout while the relay went on answering
                    # our other connections: it serves no more at once (at its process limit it
                    # leaves the rest queued, unanswered). A 421 said by silence. Silence with
                    # no answer elsewhere is an outage: the relay is skipped for a while.
                    timed_out = isinstance(error.__context__, TimeoutError)
                    if timed_out and relay.answered_at >= started and self._shrink():
                        logger.info("Relay %s did not greet one more connection (%s): one fewer", relay.alias, error)
                        connection.retired = True
                        return False
                    self._relay_down(relay, error)
                except (smtplib.SMTPException, OSError) as error:
                    self._relay_down(relay, error)
            with self._lock:
                connection.relay = self.relays[self._next_relay % len(self.relays)]
                self._next_relay += 1
        return False

    def regrow(self) -> None:
        """Try one more connection again, a while after a relay had too many of ours."""
        with self._lock:
            if self.size < self.configured_size and self.clock() - self._shrunk_at >= RELAY_RETRY_SECONDS:
                self.size += 1
                self.stats.regrown += 1

    def close(self) -> None:
        """Close every idle connection (QUIT), all at once.

        QUIT waits a round trip for the relay's answer: at 80 ms, 64 connections closed one
        after another would take five seconds.
        """
        with self._lock:
            idle, self._idle = self._idle, []
        closers = [threading.Thread(target=connection.close, daemon=True) for connection in idle]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()

    def _shrink(self) -> bool:
        """Take one connection out of the pool for this run, unless it is the last."""
        with self._lock:
            if self.size <= 1:
                return False
            self.size -= 1
            self.stats.shrunk += 1
            self._shrunk_at = self.clock()
            return True

    def _relay_down(self, relay: Relay, error: Exception) -> None:
        logger.warning("Cannot connect to relay %s: %s; skipping it for %ds", relay.alias, error, RELAY_RETRY_SECONDS)
        with self._lock:
            relay.down_until = self.clock() + RELAY_RETRY_SECONDS
            self.stats.relays_down.add(relay.alias)
