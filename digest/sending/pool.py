"""A pool of SMTP connections per sending process: concurrent sends, several relays, rate limits.

A relay tens of milliseconds away costs two round trips per message on one pipelined
connection, so one connection would spend nearly all its time waiting. Messages are built
on the caller's thread; each connection has a thread of its own that writes them, and
waiting on the network releases the GIL, so round trips overlap instead of adding up.

Every connection is a backend of a configured Django mailer (`mailers[alias]`), so its
host, port, TLS or SSL, credentials and timeout apply. Aliases in DIGEST_MAILERS are used
round-robin; a relay that refuses connections is skipped for a while and tried again. A
relay that answers 421 when a connection opens has too many of ours: the pool shrinks by
that connection for the rest of the run. So does one that leaves a new connection without
a greeting until the mailer's timeout while answering our others (at its process limit,
smtp-sink and Postfix queue further connections unanswered). Throttling replies during a
transaction (421, 454, 452) slow that connection down with backoff and retry the message;
only when the relay keeps refusing is the delivery deferred to a later run.

Each connection has at most one message in flight, so a process killed mid-send can
resend at most one message per connection (the journal records the others).

A connection goes back to the pool only in a known idle state: after the final reply of
its last transaction was read, with no reply unread. Anything unexpected on a connection's
thread (a database error while journalling, a programming error, a lost lease) closes its
socket without another word (QUIT mid-DATA would be message content), and interrupts the
send: the pool stops taking messages, and what the thread held is reported as unsettled
(perhaps accepted: sent again later with the same Message-ID). Before every message each
connection checks the sender's lease (digest.sending.lease) and whether a stop was asked for.
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

from digest.models import Delivery, DeliveryStatus
from digest.rendering.prebuilt import FastMessage, dot_stuffed, envelope_refused, fast_path_for
from digest.sending.journal import Journal
from digest.sending.lease import Lease, LeaseLost, stop_requested
from digest.sending.ledger import Outcome

logger = logging.getLogger(__name__)

# A message is sent by calling it with an open backend of the pool: True when accepted.
Send = Callable[[object], bool]

# Replies that mean "slow down", not "this recipient or message is bad": 421 (the relay is
# closing: too busy, try again later), 454 (SES's "Throttling failure"), and 452 when it is
# "too many recipients" (4.5.3); a 452 "mailbox full" is about the recipient.
THROTTLE_CODES = (421, 454)
# Waits before retrying a throttled message on the same connection, in seconds.
THROTTLE_WAITS = (0.5, 2.0, 8.0)
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
class _Connection:
    relay: Relay
    backend: object = None
    opened: bool = False
    retired: bool = False  # taken out of the pool for this run: the relay serves no more of ours


@dataclass
class PoolStats:
    """What the pool did in a run, for the summary and the benchmark."""

    opened: int = 0
    most_at_once: int = 0
    shrunk: int = 0
    regrown: int = 0
    throttled: int = 0
    relays_down: set = field(default_factory=set)


class Pool:
    """Connections to the digest relays, kept open across a run's batches; each batch is written
    by a thread per connection."""

    def __init__(
        self, *, aliases: list[str], size: int, rate: float, backlog: int = 0, clock=time.monotonic, sleep=time.sleep
    ):
        self.relays = [Relay(alias) for alias in aliases]
        self.size = self.configured_size = size
        self._shrunk_at = float("-inf")
        # Messages built but not yet taken by a connection: the builder waits beyond this.
        self.backlog = backlog or 4 * size
        self.limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        self.clock, self.sleep = clock, sleep
        self.stats = PoolStats()
        self._idle: list[_Connection] = []
        self._next_relay = 0
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._space = threading.Condition()
        self._queued = 0
        self._outcomes: list[Outcome] = []
        self._workers: list[threading.Thread] = []
        self._any_sent = False
        self._journal: Journal | None = None
        self._lease: Lease | None = None
        self._local = threading.local()  # each connection thread's items taken and not yet settled
        # Why this send stopped early (a stop asked for, a fault, a lost lease); "" while it goes on.
        self.interrupted = ""
        self.fault: BaseException | None = None
        # Deliveries whose message may have reached the relay, with no outcome: sent again later.
        self.unsettled: list[Delivery] = []

    @property
    def fast(self) -> bool:
        """Whether every relay is exactly Django's SMTP backend, so the fast path may write to it."""
        return all(fast_path_for(mailers[relay.alias]) for relay in self.relays)

    def template(self):
        """A backend of the first relay, unopened: for what does not need a connection (address parsing)."""
        return mailers[self.relays[0].alias]

    def send(
        self,
        items: Iterable[tuple[Delivery, Send]],
        *,
        journal: Journal,
        expected: int,
        lease: Lease | None = None,
    ) -> list[Outcome]:
        """Send every item over up to `size` connections at once; return one outcome per item sent.

        `items` is consumed on this thread while the connections send (building is CPU,
        sending is waiting), up to `backlog` items ahead of them. `expected` is an upper
        bound on the number of items, to open no more connections than there are messages.
        While it runs, only the connections' threads use the database (the journal).

        When the send is interrupted (`interrupted` says why), items not yet written have no
        outcome and `unsettled` lists those whose fate is unknown; `fault` is the error, if any.
        """
        self._journal, self._lease = journal, lease
        self._any_sent = False
        self.interrupted, self.fault, self.unsettled = "", None, []
        self._regrow()
        self._start(min(self.size, expected))
        try:
            for item in items:
                if self._halted():
                    break
                with self._space:
                    while self._queued >= self.backlog and self._alive():
                        self._space.wait(0.5)  # also notices connections that all went away
                    self._queued += 1
                self._work.put(item)
        finally:
            # Even if building a message raised, the connections finish what they took and stop.
            outcomes = self._drain()
        return outcomes

    def _drain(self) -> list[Outcome]:
        """Wait until every queued message has an outcome; return them.

        When connections went away (the relay allowed fewer, or went down) but others
        sent, the messages they left are sent again over the pool, now the right size;
        when no connection could send at all, they wait for a later run.
        """
        while True:
            self._stop()
            left = []
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    left.append(item)
            self._queued = 0
            if not left or self.interrupted:
                return self._collect()  # an interrupted send leaves what it did not write unsent
            if not self._any_sent:
                outcomes = self._collect()
                return outcomes + [
                    Outcome(d, DeliveryStatus.DEFERRED, "cannot connect to the mail server") for d, _ in left
                ]
            self._any_sent = False  # this round must send something to earn another
            self._start(min(self.size, len(left)))
            for item in left:
                self._queued += 1
                self._work.put(item)

    def close(self) -> None:
        """Stop the connections' threads and close every connection (QUIT)."""
        self._stop()
        with self._lock:
            idle, self._idle = self._idle, []
        # QUIT waits a round trip for the relay's answer: at 80 ms, 64 connections closed one
        # after another would take five seconds. They are closed all at once.
        closers = [threading.Thread(target=_close, args=(connection,), daemon=True) for connection in idle]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()

    # ------------------------------------------------------------------ one thread per connection

    def _start(self, count: int) -> None:
        self._workers = [worker for worker in self._workers if worker.is_alive()]
        for _ in range(len(self._workers), count):
            worker = threading.Thread(target=self._run, name=f"smtp-{len(self._workers)}", daemon=True)
            worker.start()
            self._workers.append(worker)
        self.stats.most_at_once = max(self.stats.most_at_once, len(self._workers))

    def _halted(self) -> bool:
        """Whether to write no further message: a stop was asked for, or the send was interrupted."""
        if stop_requested.is_set() and not self.interrupted:
            self.interrupted = "a stop was asked for (SIGTERM or SIGINT)"
        return bool(self.interrupted)

    def _interrupt(self, error: BaseException) -> None:
        with self._lock:
            if self.fault is None:
                self.fault = error
                self.interrupted = f"{type(error).__name__}: {error}"
        level = logging.WARNING if isinstance(error, LeaseLost) else logging.ERROR
        logger.log(level, "Sending interrupted: %r; that connection is closed unused", error, exc_info=error)

    def _regrow(self) -> None:
        """Try one more connection again, a while after a relay had too many of ours."""
        with self._lock:
            if self.size < self.configured_size and self.clock() - self._shrunk_at >= RELAY_RETRY_SECONDS:
                self.size += 1
                self.stats.regrown += 1

    def _stop(self) -> None:
        """Let every connection thread finish what it took, and end."""
        for _ in self._workers:
            self._work.put(None)  # one end marker each
        for worker in self._workers:
            worker.join()
        self._workers = []

    def _alive(self) -> bool:
        return any(worker.is_alive() for worker in self._workers)

    def _collect(self) -> list[Outcome]:
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def _done(self, outcome: Outcome | None) -> None:
        if outcome is None:  # given back: another connection, or the next round, sends it
            return
        if outcome.status == DeliveryStatus.SENT:
            self._journal.record(outcome.delivery.id)
            self._any_sent = True
        with self._lock:
            self._outcomes.append(outcome)
        self._local.held.pop(outcome.delivery.id, None)

    def _take(self):
        """The next item for a connection, or None: the end (or a halt: the item stays queued)."""
        if self._halted():
            return None
        item = self._work.get()
        if item is not None:
            with self._space:
                self._queued -= 1
                self._space.notify()
            self._local.held[item[0].id] = item
        return item

    def _fence(self) -> None:
        """Raise LeaseLost unless this sender certainly still holds its claims (before each message)."""
        if self._lease is not None:
            self._lease.check()

    def _next(self):
        """The next item for a chain, or None at the end (the end marker stays for _run to see).

        Waiting here holds a transaction open at DATA for as long as building one message
        takes (about a millisecond), far inside any relay's timeout; the builder never
        stops short of putting the end markers.
        """
        item = self._take()
        if item is None:
            self._work.put(None)
        return item

    def _give_back(self, item) -> None:
        """Put back an item this connection cannot send: another one, or the next round, will."""
        self._local.held.pop(item[0].id, None)
        with self._space:
            self._queued += 1
        self._work.put(item)

    def _run(self) -> None:
        self._local.held = {}
        connection = self._checkout()
        try:
            item = self._take()
            while item is not None:
                if not self._ready(connection):
                    self._give_back(item)
                    connection = None
                    return
                delivery, send = item
                if isinstance(send, FastMessage) and _pipelines(connection.backend):
                    item = self._chain(connection, item)
                    continue
                self._done(self._deliver(connection, delivery, send))
                item = self._take()
        except BaseException as error:
            # Whatever it was, this connection may be mid-transaction with replies unread:
            # handed to another message it would complete this one's, to this one's reader.
            _abort(connection)
            connection = None
            with self._lock:
                self.unsettled += [delivery for delivery, _ in self._local.held.values()]
            self._local.held = {}
            self._interrupt(error)
        finally:
            if connection is not None:
                self._checkin(connection)

    def _chain(self, connection: _Connection, item) -> object:
        """Send messages back to back on one connection, one round trip each; return the next item.

        RFC 2920 lets a message's content start a group of commands, so the next
        message's MAIL, RCPT and DATA go out in the same write as this one's content
        and final dot, and the relay answers both at once. A message's content goes out
        only after its own DATA was answered 354, and its acceptance is journalled as
        soon as its 250 is read: at most one message per connection is ever sent and
        unrecorded. The chain runs until the batch ends. Anything unusual (a refusal,
        throttling, a dropped connection) ends it; the messages it leaves are sent one
        transaction at a time by _deliver, with its backoff and reconnection.
        """
        smtp = connection.backend.connection
        retry: list[tuple[tuple, bool]] = []  # (item, throttled): not settled on the chain
        current, previous = item, None  # previous: its content goes out with current's envelope
        following = None  # an item taken from the queue that the chain did not send
        try:
            while True:
                self.limiter.wait()
                self._fence()  # before this write, which also ends the previous message
                message = current[1]
                content = dot_stuffed(previous[1].data) if previous is not None else b""
                smtp.send(content + message.envelope(smtp))
                if previous is not None:
                    self._settle(previous, smtp.getreply(), retry)
                    previous = None
                replies = [smtp.getreply() for _ in range(3)]
                connection.relay.answered_at = self.clock()
                refusal = envelope_refused(smtp, message.sender, message.recipient, replies)
                if refusal is not None:
                    entry, current = current, None
                    self._failed(entry, refusal, retry)
                    if _reply(refusal)[0] == 421:
                        _abort(connection)  # the relay closed this connection
                    break
                following = self._next()
                if following is None or not isinstance(following[1], FastMessage):
                    self._fence()
                    smtp.send(dot_stuffed(message.data))
                    reply = smtp.getreply()  # before letting go of current: a lost reply resends it
                    entry, current = current, None
                    self._settle(entry, reply, retry)
                    break
                previous, current, following = current, following, None
        except (smtplib.SMTPException, OSError) as error:
            # Dropped, reset or timed out. A message whose content went out may have been
            # accepted unbeknown to us: it is sent again (same Message-ID), the one in flight.
            logger.info("Connection to %s lost mid-chain: %s", connection.relay.alias, error)
            retry += [(entry, False) for entry in (previous, current) if entry is not None]
            _abort(connection)
        for entry, was_throttled in retry:
            waits = THROTTLE_WAITS
            if was_throttled:
                self.sleep(THROTTLE_WAITS[0])
                waits = THROTTLE_WAITS[1:]
            if self._halted():
                # Stopping: its content may have gone out before the connection dropped, so it is
                # unsettled (sent again later, same Message-ID), never handed back as unwritten.
                self._local.held.pop(entry[0].id, None)
                with self._lock:
                    self.unsettled.append(entry[0])
                continue
            if not self._ready(connection):
                self._give_back(entry)
                continue
            self._done(self._deliver(connection, *entry, waits=waits))
        return following if following is not None else self._take()

    def _settle(self, entry, reply: tuple[int, bytes], retry: list) -> None:
        """Act on the reply to a message's final dot."""
        code, text = reply
        if code == 250:
            self._done(Outcome(entry[0], DeliveryStatus.SENT))
        else:
            self._failed(entry, smtplib.SMTPDataError(code, text), retry)

    def _failed(self, entry, error, retry: list) -> None:
        if throttled(*_reply(error)):
            with self._lock:
                self.stats.throttled += 1
            retry.append((entry, True))
        else:
            self._done(reply_outcome(entry[0], error))

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
                    _no_delay(connection.backend)
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

    def _deliver(self, connection: _Connection, delivery: Delivery, send: Send, waits=None) -> Outcome | None:
        """Send one message; back off when throttled, reconnect once when dropped.

        None when the message was given back: the relay took this connection out (a 421
        or no greeting on reconnecting), and another connection sends it.
        """
        waits = iter(THROTTLE_WAITS if waits is None else waits)
        reconnected = False
        while True:
            self.limiter.wait()
            self._fence()
            try:
                sent = send(connection.backend)
                connection.relay.answered_at = self.clock()
                return Outcome(delivery, DeliveryStatus.SENT) if sent else _none_sent(delivery)
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
            except Exception as error:
                # A mailer that is not SMTP (an ESP's HTTP API backend) raises its own errors.
                # Its connection thread must go on: the delivery is retried in a later run.
                logger.warning("Mailer %s failed for delivery %s: %r", connection.relay.alias, delivery.id, error)
                _abort(connection)  # whatever state it is in, it carries nothing more
                return Outcome(delivery, DeliveryStatus.DEFERRED, f"the mailer failed: {error}")
            _abort(connection)
            if not self._ready(connection):
                if connection.retired:
                    self._give_back((delivery, send))
                    return None
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


def _pipelines(backend) -> bool:
    """Whether the backend's open SMTP connection offers PIPELINING (RFC 2920)."""
    smtp = getattr(backend, "connection", None)
    if smtp is None:
        return False
    try:
        smtp.ehlo_or_helo_if_needed()
    except (smtplib.SMTPException, OSError):
        return False  # the transaction that follows finds out, and reconnects
    return bool(smtp.does_esmtp and smtp.has_extn("pipelining"))


def _no_delay(backend) -> None:
    """Send each command at once: every write is a whole command, so Nagle's algorithm (waiting
    for the previous segment's ACK, which the peer may delay by 40 ms) only adds round trips."""
    sock = getattr(getattr(backend, "connection", None), "sock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _none_sent(delivery: Delivery) -> Outcome:
    return Outcome(delivery, DeliveryStatus.DEFERRED, "the mailer reported 0 messages sent")


def _close(connection: _Connection) -> None:
    """Close an idle connection politely (QUIT)."""
    if connection.backend is None:
        return
    try:
        connection.backend.close()
    except (smtplib.SMTPException, OSError):
        connection.backend.connection = None
    connection.opened = False


def _abort(connection: _Connection | None) -> None:
    """Close a connection in any state at once: the socket, with no QUIT that could land inside a message."""
    if connection is None or connection.backend is None:
        return
    smtp = getattr(connection.backend, "connection", None)
    if isinstance(smtp, smtplib.SMTP):
        try:
            smtp.close()
        except OSError:
            pass
        connection.backend.connection = None
    else:
        _close(connection)  # not SMTP (an ESP's HTTP API): nothing can be half-written
    connection.opened = False
