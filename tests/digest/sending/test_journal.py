"""The journal: what a run's relays accepted is in the database before record() returns, in few statements."""

import threading

import pytest
from django.db import connection

from digest.models import JournalEntry
from digest.sending.journal import Journal, journal_read
from tests.factories import claimant_new

pytestmark = pytest.mark.django_db


def inserts_counted():
    """Count the INSERT statements the test's connection runs (the journal writes through it)."""
    counted = {"inserts": 0}

    def count(execute, sql, params, many, context):
        counted["inserts"] += sql.lstrip().upper().startswith("INSERT")
        return execute(sql, params, many, context)

    return counted, connection.execute_wrapper(count)


def test_recorded_ids_are_in_the_database_when_record_returns():
    claimant = claimant_new()
    journal = Journal(claimant)
    for delivery_id in (3, 5, 8):
        journal.record(delivery_id)
        # The process may die right here: the mark is already where any machine reads it.
        assert delivery_id in journal_read(claimant)
    assert journal_read(claimant) == {3, 5, 8}
    assert journal_read(claimant_new()) == set()


def test_close_deletes_only_its_own_marks():
    mine, other = Journal(claimant_new()), Journal(claimant_new())
    mine.record(1)
    other.record(2)
    mine.close()
    assert list(JournalEntry.objects.values_list("delivery_id", flat=True)) == [2]
    other.close()


def test_connections_recording_at_once_share_one_insert(settings):
    settings.DIGEST_JOURNAL_WAIT_MS = 0
    claimant = claimant_new()
    journal = Journal(claimant)
    threads_count = 6
    known = threading.Barrier(threads_count + 1)
    go = threading.Barrier(threads_count + 1)
    errors = []

    def connection_thread(n: int) -> None:
        try:
            journal.record(n)  # each connection's first message: its thread is now a known recorder
            known.wait(10)
            go.wait(10)
            journal.record(100 + n)
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=connection_thread, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    known.wait(10)
    # Long enough that only "every connection is waiting" can end the wait in time.
    settings.DIGEST_JOURNAL_WAIT_MS = 30_000
    counted, wrapper = inserts_counted()
    with wrapper:
        go.wait(10)
        for thread in threads:
            thread.join(20)
    assert not errors
    # The six second marks went in together, as soon as all six connections were waiting.
    assert counted["inserts"] == 1
    assert journal_read(claimant) == set(range(threads_count)) | {100 + n for n in range(threads_count)}
    journal.close()


def test_a_failed_write_raises_and_keeps_the_marks_for_the_next_try(settings, monkeypatch):
    journal = Journal(claimant_new())

    def refuse(marks):
        raise OSError("database went away")

    monkeypatch.setattr(journal, "_write", refuse)
    with pytest.raises(OSError):
        journal.record(7)
    monkeypatch.undo()
    journal.record(8)
    assert journal_read(journal.claimant) == {7, 8}
    journal.close()
