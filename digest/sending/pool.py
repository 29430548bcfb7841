"""A pool of SMTP connections per sending process: concurrent sends, several relays, rate limits.

A relay tens of milliseconds away costs two round trips per message, so one connection would
spend nearly all its time waiting: messages are built on the caller's thread and each
connection has a thread of its own that writes them (waiting on the network releases the GIL).
Connections go to the relays in turn (digest.sending.relays); the caller's Pacing decides how
many each mailbox provider has in flight (digest.sending.pacing). Throttling replies (421,
454, 452, 4.7.x) slow that connection down with backoff and retry the message; only when the
relay keeps refusing is the delivery deferred to a later run.

Each connection has at most one message in flight (the journal records the others), and goes
back to the pool only after the final reply of its last transaction was read. Anything
unexpected on a connection's thread (a database error, a bug, a lost lease) closes its socket
without another word (QUIT mid-DATA would be message content) and interrupts the send: what
the thread held is reported as unsettled (sent again later with the same Message-ID). Before
every message each connection checks the sender's lease and whether a stop was asked for.
"""

import logging
import queue
import smtplib
import threading
import time
from collections.abc import Callable, Iterable

from digest.models import Delivery, DeliveryStatus
from digest.sending.journal import Journal
from digest.sending.lease import Lease, LeaseLost, stop_requested
from digest.sending.outcomes import Outcome, none_sent, provider_throttled, reply_of, reply_outcome, throttled
from digest.sending.pacing import Pacing
from digest.sending.relays import Connection, PoolStats, RateLimiter, Relays
from digest.sending.smtp import FastMessage, dot_stuffed, envelope_refused, pipelines

logger = logging.getLogger(__name__)

# Waits before retrying a throttled message on the same connection, in seconds.
THROTTLE_WAITS = (0.5, 2.0, 8.0)

CHAIN_WAIT = 0.05  # how long a chain holds its message at DATA for the next one to be built

# A message is sent by calling it with an open backend of the pool: True when accepted.
Send = Callable[[object], bool]


class Pool:
    """Connections to the digest relays, kept open across a run's batches; each batch is written
    by a thread per connection."""

    def __init__(
        self, *, aliases: list[str], size: int, rate: float, backlog: int = 0, clock=time.monotonic, sleep=time.sleep
    ):
        # Messages built but not yet taken by a connection: the builder waits beyond this.
        self.backlog = backlog or 4 * size
        self.limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        self.clock, self.sleep = clock, sleep
        self.stats = PoolStats()
        self.relays = Relays(aliases, size=size, stats=self.stats, clock=clock)
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._space = threading.Condition()
        self._queued = 0
        self._outcomes: list[Outcome] = []
        self._workers: list[threading.Thread] = []
        self._any_sent = False
        self._journal: Journal | None = None
        self._lease: Lease | None = None
        self._pacing: Pacing | None = None
        self._local = threading.local()  # each connection thread's items taken and not yet settled
        # Why this send stopped early (a stop asked for, a fault, a lost lease); "" while it goes on.
        self.interrupted = ""
        self.fault: BaseException | None = None
        # Deliveries whose message may have reached the relay, with no outcome: sent again later.
        self.unsettled: list[Delivery] = []

    def send(
        self,
        items: Iterable[tuple[Delivery, Send]],
        *,
        journal: Journal,
        expected: int,
        lease: Lease | None = None,
        pacing: Pacing | None = None,
    ) -> list[Outcome]:
        """Send every item over up to `size` connections at once; return one outcome per item sent.

        `items` is consumed on this thread while the connections send (building is CPU,
        sending is waiting), up to `backlog` items ahead of them. `expected` is an upper
        bound on the number of items, to open no more connections than there are messages.
        While it runs, only the connections' threads use the database (the journal).

        When the send is interrupted (`interrupted` says why), items not yet written have no
        outcome and `unsettled` lists those whose fate is unknown; `fault` is the error, if any.
        """
        self._journal, self._lease, self._pacing = journal, lease, pacing
        self._any_sent = False
        self.interrupted, self.fault, self.unsettled = "", None, []
        self.relays.regrow()
        self._start(min(self.relays.size, expected))
        try:
            for item in items:
                if self.halted():
                    break
                with self._space:
                    while self._queued >= self.backlog and self.alive():
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
            self._start(min(self.relays.size, len(left)))
            for item in left:
                self._queued += 1
                self._work.put(item)

    def close(self) -> None:
        """Stop the connections' threads and close every connection (QUIT)."""
        self._stop()
        self.relays.close()

    # ------------------------------------------------------------------ one thread per connection

    def _start(self, count: int) -> None:
        self._workers = [worker for worker in self._workers if worker.is_alive()]
        for _ in range(len(self._workers), count):
            worker = threading.Thread(target=self._run, name=f"smtp-{len(self._workers)}", daemon=True)
            worker.start()
            self._workers.append(worker)
        self.stats.most_at_once = max(self.stats.most_at_once, len(self._workers))

    def halted(self) -> bool:
        """Whether to write no further message: a stop was asked for, or the send was interrupted."""
        if stop_requested.is_set() and not self.interrupted:
            self.interrupted = "a stop was asked for (SIGTERM or SIGINT)"
        return bool(self.interrupted)

    def _throttled(self, delivery: Delivery, error) -> None:
        with self._lock:
            self.stats.throttled += 1
        if self._pacing is not None and provider_throttled(error):
            self._pacing.throttled(delivery, reply_of(error)[1])

    def _interrupt(self, error: BaseException) -> None:
        with self._lock:
            if self.fault is None:
                self.fault = error
                self.interrupted = f"{type(error).__name__}: {error}"
        level = logging.WARNING if isinstance(error, LeaseLost) else logging.ERROR
        logger.log(level, "Sending interrupted: %r; that connection is closed unused", error, exc_info=error)

    def _stop(self) -> None:
        """Let every connection thread finish what it took, and end."""
        for _ in self._workers:
            self._work.put(None)  # one end marker each
        for worker in self._workers:
            worker.join()
        self._workers = []

    def alive(self) -> bool:
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
        if self._pacing is not None:
            self._pacing.settled(outcome)

    def _take(self):
        """The next item for a connection, or None: the end (or a halt: the item stays queued)."""
        if self.halted():
            return None
        item = self._work.get()
        if item is not None:
            self._taken(item)
        return item

    def _taken(self, item) -> None:
        with self._space:
            self._queued -= 1
            self._space.notify()
        self._local.held[item[0].id] = item

    def _fence(self) -> None:
        """Raise LeaseLost unless this sender certainly still holds its claims (before each message)."""
        if self._lease is not None:
            self._lease.check()

    def _next(self):
        """The next item for a chain, or None: at the end (its marker stays for _run to see), or when
        none comes within CHAIN_WAIT (the builder waits for a provider's room): the chain ends here."""
        if self.halted():
            return None
        try:
            item = self._work.get(timeout=CHAIN_WAIT)  # holds a transaction open at DATA meanwhile
        except queue.Empty:
            return None
        if item is None:
            self._work.put(None)
            return None
        self._taken(item)
        return item

    def _give_back(self, item) -> None:
        """Put back an item this connection cannot send: another one, or the next round, will."""
        self._local.held.pop(item[0].id, None)
        with self._space:
            self._queued += 1
        self._work.put(item)

    def _run(self) -> None:
        self._local.held = {}
        connection = self.relays.checkout()
        try:
            item = self._take()
            while item is not None:
                if not self.relays.ready(connection):
                    self._give_back(item)
                    connection = None
                    return
                delivery, send = item
                if isinstance(send, FastMessage) and pipelines(connection.backend):
                    item = self._chain(connection, item)
                    continue
                self._done(self._deliver(connection, delivery, send))
                item = self._take()
        except BaseException as error:
            # Whatever it was, this connection may be mid-transaction with replies unread:
            # handed to another message it would complete this one's, to this one's reader.
            connection.abort()
            connection = None
            with self._lock:
                self.unsettled += [delivery for delivery, _ in self._local.held.values()]
            self._local.held = {}
            self._interrupt(error)
        finally:
            if connection is not None:
                self.relays.checkin(connection)

    def _chain(self, connection: Connection, item) -> object:
        """Send messages back to back on one connection, one round trip each; return the next item.

        RFC 2920 lets a message's content start a group of commands: the next message's MAIL,
        RCPT and DATA go out in the same write as this one's content and final dot. Content goes
        out only after its own DATA was answered 354, and is journalled as soon as its 250 is
        read: at most one message per connection is ever sent and unrecorded. Anything unusual
        ends the chain; what it leaves is sent one transaction at a time by _deliver.
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
                envelope = message.envelope(smtp)
                smtp.send(dot_stuffed(previous[1].data, envelope) if previous is not None else envelope)
                if previous is not None:
                    self._settle(previous, smtp.getreply(), retry)
                    previous = None
                replies = [smtp.getreply() for _ in range(3)]
                connection.relay.answered_at = self.clock()
                refusal = envelope_refused(smtp, message.sender, message.recipient, replies)
                if refusal is not None:
                    entry, current = current, None
                    self._failed(entry, refusal, retry)
                    if reply_of(refusal)[0] == 421:
                        connection.abort()  # the relay closed this connection
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
            connection.abort()
        for entry, was_throttled in retry:
            waits = THROTTLE_WAITS
            if was_throttled:
                self.sleep(THROTTLE_WAITS[0])
                waits = THROTTLE_WAITS[1:]
            if self.halted():
                # Stopping: its content may have gone out before the connection dropped, so it is
                # unsettled (sent again later, same Message-ID), never handed back as unwritten.
                self._local.held.pop(entry[0].id, None)
                with self._lock:
                    self.unsettled.append(entry[0])
                continue
            if not self.relays.ready(connection):
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
        if throttled(*reply_of(error)):
            self._throttled(entry[0], error)
            retry.append((entry, True))
        else:
            self._done(reply_outcome(entry[0], error))

    def _deliver(self, connection: Connection, delivery: Delivery, send: Send, waits=None) -> Outcome | None:
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
                return Outcome(delivery, DeliveryStatus.SENT) if sent else none_sent(delivery)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
                code, text = reply_of(error)
                if not throttled(code, text):
                    return reply_outcome(delivery, error)
                wait = next(waits, None)
                if wait is None:
                    return Outcome(delivery, DeliveryStatus.DEFERRED, f"throttled by the relay: {text}")
                self._throttled(delivery, error)
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
                connection.abort()  # whatever state it is in, it carries nothing more
                return Outcome(delivery, DeliveryStatus.DEFERRED, f"the mailer failed: {error}")
            connection.abort()
            if not self.relays.ready(connection):
                if connection.retired:
                    self._give_back((delivery, send))
                    return None
                return Outcome(delivery, DeliveryStatus.DEFERRED, "cannot connect to the mail server")
