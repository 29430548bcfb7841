"""A sender's claims as a lease on the database's clock: renewed while it sends, checked before every message.

Claims are stamped with the database's time (project.clock), never a machine's. While a
batch is sent a heartbeat renews the stamp every DIGEST_CLAIM_TIMEOUT / 4. Another sender
takes claims over only once their stamp is older than DIGEST_CLAIM_TIMEOUT on that same
clock, and only after applying their claimant's journal (digest.sending.ledger.deliveries_recover).

The sender never asks the database whether it still holds its claims before a message: it
knows the latest moment they can still be valid from its own monotonic clock, read before
the stamp was written (so never late), and stops before its next message once that has
passed, or once a renewal found rows taken from it. A sender frozen past its lease (SIGSTOP,
a paused VM, a stalled relay) wakes up and sends nothing more than the message each
connection was already writing.

Stopping: SIGTERM or SIGINT during a send task (`stop_on_signals`) sets `stop_requested`;
the sender stops claiming, lets each connection finish the message it is writing, records
every outcome, hands the rest back to the ledger and returns.
"""

import contextlib
import logging
import os
import signal
import threading
import time

from django.db import Error as DatabaseError

from digest.exceptions import DeliveryError

logger = logging.getLogger(__name__)

# Of the lease, kept as a margin: the renewal's own round trip, clocks running at slightly different rates.
MARGIN = 0.1

stop_requested = threading.Event()


class LeaseLost(DeliveryError):
    """This sender's claims expired or were taken over: it must not send another message of them."""


def _clock() -> float:
    # CLOCK_BOOTTIME also counts time suspended, which CLOCK_MONOTONIC does not on Linux.
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


class Lease:
    """The claims one sender holds, their local deadline, and the heartbeat that renews them.

    `renew` is any callable that re-stamps the sender's claims with the database's time and
    returns how many rows it still holds; the heartbeat calls it from its own thread.
    """

    def __init__(self, *, claimant: str, timeout: float, clock=_clock):
        self.claimant = claimant
        self.timeout = timeout
        self.clock = clock
        self.lost = ""  # why, once lost
        self._deadline = float("-inf")
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()

    def stamping(self) -> float:
        """Return the local time to pass to `stamped` once the claims' database stamp is written."""
        return self.clock()

    def stamped(self, started: float) -> None:
        """Note that claims were stamped by a statement begun at local time `started`."""
        self._deadline = started + self.timeout * (1 - MARGIN)
        self.lost = ""

    def valid(self) -> bool:
        """Whether the claims are certainly still this sender's."""
        return not self.lost and self.clock() < self._deadline

    def check(self) -> None:
        """Raise LeaseLost unless the claims are certainly still this sender's."""
        if self.lost:
            raise LeaseLost(self.lost, claimant=self.claimant)
        if self.clock() >= self._deadline:
            self.lost = f"the claims' lease of {self.timeout:g} s ran out before they were renewed"
            raise LeaseLost(self.lost, claimant=self.claimant)

    def renew(self, renew, *, holding: int) -> None:
        """Re-stamp the claims with `renew()` (it returns how many rows they still are); raise LeaseLost if fewer than `holding`."""
        started = self.clock()
        held = renew()
        if held < holding:
            self.lost = f"{holding - held} of {holding} claimed deliveries were taken over by another sender"
            raise LeaseLost(self.lost, claimant=self.claimant)
        self.stamped(started)

    @contextlib.contextmanager
    def heartbeat(self, renew, *, holding: int):
        """Renew the claims every timeout / 4 while the block runs; `holding` is how many rows they are."""
        self._stop.clear()
        self._beat = threading.Thread(target=self._beats, args=(renew, holding), name="lease", daemon=True)
        self._beat.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._beat.join()

    def _beats(self, renew, holding: int) -> None:
        while not self._stop.wait(self.timeout / 4):
            if self.lost:
                return
            try:
                self.renew(renew, holding=holding)
            except DatabaseError as error:
                # Nothing is lost yet: the local deadline stops sending if renewals keep failing.
                logger.warning("Cannot renew the claims of %s: %s", self.claimant, error)
            except LeaseLost:
                logger.error("Sender %s: %s; it stops sending", self.claimant, self.lost)
                return


@contextlib.contextmanager
def stop_on_signals():
    """While the block runs in the main thread, SIGTERM and SIGINT ask the sender to stop gracefully.

    The handlers they had before (a worker's own graceful shutdown) still run; a second
    signal reaches them as it would have without this.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop_requested.clear()
    previous = {}

    def handle(signum, frame):
        handler = previous.get(signum)
        if stop_requested.is_set():  # a second signal: as if this handler were not here
            if callable(handler):
                handler(signum, frame)
            elif handler != signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        logger.warning("%s: finishing the messages in flight, then stopping", signal.strsignal(signum))
        stop_requested.set()
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signum, frame)  # e.g. db_worker's: take no further task once this one ends

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        stop_requested.clear()
