"""The record, in the database, of the messages a run's relays accepted: what a dead sender had sent.

Outcomes reach the ledger once per batch. If the sending process dies mid-batch (a worker
killed on any machine), a later run reads the dead claimant's journal rows and records
those deliveries as sent, so only the messages in flight when it died are sent again
(with the same Message-ID). The rows live beside the ledger, so any machine can recover
any other's batch: no shared disk.

A mark is durable before `record()` returns, which is what keeps that bound: a connection
never starts its next message while the server's acceptance of the last one exists only
in memory. To cost a few statements per hundred messages rather than one each, marks are
committed in groups (group commit): the first connection to record waits up to
DIGEST_JOURNAL_WAIT_MS for the others, or until as many connections are waiting as have
ever recorded at once, then writes them all in one multi-row INSERT.
"""

import threading
import time

from django.db import DEFAULT_DB_ALIAS, connections

from digest.conf import digest_settings
from digest.models import JournalEntry


class Journal:
    """The journal of one claimant (one run or task), written through the creating thread's connection.

    The pool's connections record from their own threads. They write through the
    connection of the thread that made the journal, which is in autocommit while a batch
    is sent, so every INSERT commits at once (and in a test, joins the test's transaction).
    """

    def __init__(self, claimant: str):
        self.claimant = claimant
        self._connection = connections[DEFAULT_DB_ALIAS]
        self._connection.inc_thread_sharing()
        self._changed = threading.Condition()
        self._pending: list[int] = []
        self._recorded = 0  # marks handed to record(), in order
        self._durable = 0  # of those, how many are committed
        self._flushing = False
        self._waiting = 0
        self._recorders: set[threading.Thread] = set()
        # The most connections seen recording at once: a pool's next batch starts new threads,
        # and its first marks should still wait for as many others as the last batch had.
        self._most_recorders = 0
        self._write_lock = threading.Lock()

    def record(self, delivery_id: int) -> None:
        """Note that the server accepted this delivery's message; return once the note is committed."""
        with self._changed:
            self._pending.append(delivery_id)
            self._recorded += 1
            mine = self._recorded
            self._recorders.add(threading.current_thread())
            self._waiting += 1
            self._changed.notify_all()  # a waiting leader may now have everyone
            try:
                while self._durable < mine:
                    if self._flushing:
                        self._changed.wait()
                    else:
                        self._lead()
            finally:
                self._waiting -= 1

    def _lead(self) -> None:
        """Gather the other connections' marks for a moment, then commit them all (lock held on entry)."""
        self._flushing = True
        deadline = time.monotonic() + digest_settings.JOURNAL_WAIT_MS / 1000
        while self._waiting < self._expected() and (left := deadline - time.monotonic()) > 0:
            self._changed.wait(left)
        marks, self._pending = self._pending, []
        upto = self._recorded
        self._changed.release()
        try:
            self._write(marks)
        except BaseException:
            self._changed.acquire()
            self._pending[:0] = marks  # the next leader tries again
            raise
        else:
            self._changed.acquire()
            self._durable = max(self._durable, upto)
        finally:
            self._flushing = False
            self._changed.notify_all()

    def _expected(self) -> int:
        """How many marks a group waits for: one from every connection recording, as many as there have been."""
        self._recorders = {thread for thread in self._recorders if thread.is_alive()}
        self._most_recorders = max(self._most_recorders, len(self._recorders))
        return self._most_recorders

    def _write(self, marks: list[int]) -> None:
        with self._write_lock, self._connection.cursor() as cursor:
            table = JournalEntry._meta.db_table
            rows = ", ".join(["(%s, %s)"] * len(marks))
            params = [value for delivery_id in marks for value in (self.claimant, delivery_id)]
            cursor.execute(f"INSERT INTO {table} (claimant, delivery_id) VALUES {rows}", params)

    def through(self, statement):
        """Return `statement(connection)` run on the journal's connection, between two of its writes.

        The lease's heartbeat (digest.sending.lease) renews the sender's claims this way.
        """
        with self._write_lock:
            return statement(self._connection)

    def close(self, *, keep: bool = False) -> None:
        """Delete this claimant's marks (every outcome they proved is in the ledger now), unless `keep`.

        A sender that could not record its outcomes keeps them: they are what a later
        sender recovers from (digest.sending.ledger.deliveries_recover).
        """
        try:
            if not keep:
                JournalEntry.objects.using(self._connection.alias).filter(claimant=self.claimant).delete()
        finally:
            self._connection.dec_thread_sharing()


def journal_read(claimant: str) -> set[int]:
    """Return the delivery ids a (dead) claimant's journal says were accepted."""
    return set(JournalEntry.objects.filter(claimant=claimant).values_list("delivery_id", flat=True))
