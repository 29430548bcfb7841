"""A pool of SMTP connections per sending process: concurrent sends, several relays, rate limits.

A relay tens of milliseconds away costs two round trips per message on one pipelined
connection, so one connection would spend nearly all its time waiting. Messages are built
on the caller's thread; each connection has a thread of its own that writes them, and
waiting on the network releases the GIL, so round trips overlap instead of adding up.

Every connection is a backend of a configured Django mailer (`mailers[alias]`), so its
host, port, TLS or SSL, credentials and timeout apply. Aliases in DIGEST_MAILERS are used
round-robin; a relay that refuses connections is skipped for a while and tried again. A
relay that answers 421 when a connection opens has too many of ours: the pool shrinks by
that connection for the rest of the run. Throttling replies during a transaction (421,
454, 452) slow that connection down with backoff and retry the message; only when the
relay keeps refusing is the delivery deferred to a later run.

Each connection has at most one message in flight, so a process killed mid-send can
resend at most one message per connection (the journal records the others).
"""

import logging
import queue
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.mail import mailers

from digest.fastmail import fast_path_for
from digest.journal import Journal
from digest.ledger import Outcome
from digest.models import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

# A message is sent by calling it with an open backend of the pool: True when accepted.
Send = Callable[[object], bool]

# Replies that mean "slow down", not "this recipient or message is bad": 421 (the relay is
# closing: too busy, try again later), 454 (SES's "Throttling failure"), and 452 when it is
# "too many recipients" (4.5.3); a 452 "mailbox full" is about the recipient.
THROTTLE_CODES = (421, 454)
# Waits before retrying a throttled message on the same connection, in seconds.
THROTTLE_WAITS = (0.5, 2.0, 8.0)
# How long a relay that refused a connection is skipped.
RELAY_RETRY_SECONDS = 30.0


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


@dataclass
class _Connection:
    relay: Relay
    backend: object = None
    opened: bool = False


@dataclass
class PoolStats:
    """What the pool did in a run, for the summary and the benchmark."""

    opened: int = 0
    most_at_once: int = 0
    shrunk: int = 0
    throttled: int = 0
    relays_down: set = field(default_factory=set)


class Pool:
    """Connections to the digest relays, kept open across a run's batches."""

    def __init__(self, *, aliases: list[str], size: int, rate: float, clock=time.monotonic, sleep=time.sleep):
        self.relays = [Relay(alias) for alias in aliases]
        self.size = size
        self.limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        self.clock, self.sleep = clock, sleep
        self.stats = PoolStats()
        self._idle: list[_Connection] = []
        self._next_relay = 0
        self._lock = threading.Lock()

    @property
    def fast(self) -> bool:
        """Whether every relay is exactly Django's SMTP backend, so the fast path may write to it."""
        return all(fast_path_for(mailers[relay.alias]) for relay in self.relays)

    def template(self):
        """A backend of the first relay, unopened: for what does not need a connection (address parsing)."""
        return mailers[self.relays[0].alias]

    def send(self, items: Iterable[tuple[Delivery, Send]], *, journal: Journal, expected: int) -> list[Outcome]:
        """Send every item over up to `size` connections at once; return one outcome per item.

        The connections start sending while `items` is still being built (on this thread),
        so building a batch (CPU) and sending it (network) overlap. `expected` is an upper
        bound on the number of items, to open no more connections than there are messages.
        """
        work: queue.SimpleQueue = queue.SimpleQueue()
        outcomes: list[Outcome] = []
        returned: list[tuple[Delivery, Send]] = []  # taken by a connection that then went away
        workers = [
            threading.Thread(target=self._work, args=(work, outcomes, returned, journal), name=f"smtp-{n}", daemon=True)
            for n in range(min(self.size, expected))
        ]
        self.stats.most_at_once = max(self.stats.most_at_once, len(workers))
        for worker in workers:
            worker.start()
        try:
            for item in items:
                work.put(item)
        finally:
            # Even if building a message raised, the connections finish what they took and stop.
            for _ in workers:
                work.put(None)  # one "no more" for each connection
            for worker in workers:
                worker.join()
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                returned.append(item)
        if returned and outcomes:
            # Some connections went away (the relay allowed fewer, or one went down) but others
            # sent: the pool, now the right size, takes what they left.
            outcomes += self.send(returned, journal=journal, expected=len(returned))
        else:
            # No connection could send at all: what is left waits for a later run.
            outcomes += [Outcome(d, DeliveryStatus.DEFERRED, "cannot connect to the mail server") for d, _ in returned]
        return outcomes

    def close(self) -> None:
        """Close every idle connection (QUIT)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            _close(connection)

    # ------------------------------------------------------------------ one thread per connection

    def _work(self, work: queue.SimpleQueue, outcomes: list[Outcome], returned: list, journal: Journal) -> None:
        connection = self._checkout()
        try:
            while (item := work.get()) is not None:
                delivery, send = item
                if not self._ready(connection):
                    returned.append(item)  # another connection, or the next round, sends it
                    connection = None
                    return
                outcome = self._deliver(connection, delivery, send)
                if outcome.status == DeliveryStatus.SENT:
                    journal.record(delivery.id)
                outcomes.append(outcome)  # list.append is atomic under the GIL
        finally:
            if connection is not None:
                self._checkin(connection)

    def _checkout(self) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            relay = self.relays[self._next_relay % len(self.relays)]
            self._next_relay += 1
        return _Connection(relay)

    def _checkin(self, connection: _Connection) -> None:
        with self._lock:
            self._idle.append(connection)

    def _ready(self, connection: _Connection) -> bool:
        """Open the connection if needed, on its relay or the next one up; False if it should go away."""
        # Django's SMTP backend drops its smtplib object when closed; other backends have none.
        if connection.opened and getattr(connection.backend, "connection", True) is not None:
            return True
        for _ in range(len(self.relays)):
            relay = connection.relay
            if relay.down_until <= self.clock():
                try:
                    connection.backend = mailers[relay.alias]
                    connection.backend.open()
                    _no_delay(connection.backend)
                    connection.opened = True
                    with self._lock:
                        self.stats.opened += 1
                    return True
                except smtplib.SMTPConnectError as error:
                    if error.smtp_code == 421 and self._shrink():
                        logger.info("Relay %s has too many of our connections (%s): one fewer", relay.alias, error)
                        return False
                    self._relay_down(relay, error)
                except (smtplib.SMTPException, OSError) as error:
                    self._relay_down(relay, error)
            with self._lock:
                connection.relay = self.relays[self._next_relay % len(self.relays)]
                self._next_relay += 1
        return False

    def _shrink(self) -> bool:
        """Take one connection out of the pool for this run, unless it is the last."""
        with self._lock:
            if self.size <= 1:
                return False
            self.size -= 1
            self.stats.shrunk += 1
            return True

    def _relay_down(self, relay: Relay, error: Exception) -> None:
        logger.warning("Cannot connect to relay %s: %s; skipping it for %ds", relay.alias, error, RELAY_RETRY_SECONDS)
        with self._lock:
            relay.down_until = self.clock() + RELAY_RETRY_SECONDS
            self.stats.relays_down.add(relay.alias)

    def _deliver(self, connection: _Connection, delivery: Delivery, send: Send) -> Outcome:
        """Send one message; back off when throttled, reconnect once when dropped."""
        waits = iter(THROTTLE_WAITS)
        reconnected = False
        while True:
            self.limiter.wait()
            try:
                return Outcome(delivery, DeliveryStatus.SENT) if send(connection.backend) else _none_sent(delivery)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
                code, text = _reply(error)
                if not throttled(code, text):
                    return reply_outcome(delivery, error)
                wait = next(waits, None)
                if wait is None:
                    return Outcome(delivery, DeliveryStatus.DEFERRED, f"throttled by the relay: {text}")
                with self._lock:
                    self.stats.throttled += 1
                self.sleep(wait)
                if code != 421:
                    continue  # the connection is still open; 421 means the relay closed it
            except (smtplib.SMTPException, OSError) as error:
                # Dropped, reset or timed out: reopen once and send this message again.
                if reconnected:
                    return Outcome(delivery, DeliveryStatus.DEFERRED, f"connection lost: {error}")
                reconnected = True
            _close(connection)
            if not self._ready(connection):
                return Outcome(delivery, DeliveryStatus.DEFERRED, "cannot connect to the mail server")


def throttled(code: int, text: str) -> bool:
    """Whether a reply asks us to slow down rather than refusing this recipient or message."""
    lowered = text.lower()
    return code in THROTTLE_CODES or (code == 452 and ("4.5.3" in lowered or "too many" in lowered))


def reply_outcome(delivery: Delivery, error: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException) -> Outcome:
    """The outcome of an error reply: the sender refused or a message too big holds the group;
    5xx is permanent for this recipient; 4xx is worth a retry in a later run."""
    code, text = _reply(error)
    if isinstance(error, smtplib.SMTPSenderRefused) and code >= 500:
        # MAIL FROM refused: our sender, not this reader; every message of the group would fail.
        return Outcome(
            delivery, DeliveryStatus.DEFERRED, f"the mail server refused the sender {error.sender}: {text}", held=True
        )
    if isinstance(error, smtplib.SMTPDataError) and (code == 552 or text.split(" ")[1:2] == ["5.3.4"]):
        # Too big for the relay: the digest's fault, the same for every reader of the group.
        return Outcome(delivery, DeliveryStatus.DEFERRED, f"message refused: {text}", held=True)
    status = DeliveryStatus.FAILED if code >= 500 else DeliveryStatus.DEFERRED
    return Outcome(delivery, status, text, permanent=code >= 500)


def _reply(error: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException) -> tuple[int, str]:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(error.recipients.values()), (0, b""))
    else:
        code, text = error.smtp_code, error.smtp_error
    return code, f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"


def _no_delay(backend) -> None:
    """Send each command at once: every write is a whole command, so Nagle's algorithm (waiting
    for the previous segment's ACK, which the peer may delay by 40 ms) only adds round trips."""
    sock = getattr(getattr(backend, "connection", None), "sock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _none_sent(delivery: Delivery) -> Outcome:
    return Outcome(delivery, DeliveryStatus.DEFERRED, "the mailer reported 0 messages sent")


def _close(connection: _Connection) -> None:
    if connection.backend is None:
        return
    try:
        connection.backend.close()
    except (smtplib.SMTPException, OSError):
        connection.backend.connection = None
    connection.opened = False
