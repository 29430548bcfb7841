"""The journal: what a run handed to SMTP survives the run's death, and nothing else is trusted."""

from digest.journal import Journal, journal_discard, journal_read
from digest.ledger import claimant_new


def test_recorded_ids_are_read_back_after_the_process_is_gone(tmp_path):
    claimant = claimant_new()
    journal = Journal(tmp_path, claimant)
    for delivery_id in (3, 5, 8):
        journal.record(delivery_id)
    # The run dies here: no close(). Another run reads what the server had accepted.
    assert journal_read(tmp_path, claimant) == {3, 5, 8}
    journal_discard(tmp_path, claimant)
    assert journal_read(tmp_path, claimant) == set()


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path):
    claimant = claimant_new()
    # "12\n" was being written when the process died: "1" must not count as delivery 1.
    (tmp_path / f"{claimant}.sent").write_text("3\n5\n1", encoding="ascii")
    assert journal_read(tmp_path, claimant) == {3, 5}


def test_close_deletes_the_journal(tmp_path):
    claimant = claimant_new()
    journal = Journal(tmp_path, claimant)
    journal.record(1)
    journal.close()
    assert list(tmp_path.iterdir()) == []


def test_a_claimant_that_is_not_ours_never_names_a_file(tmp_path):
    (tmp_path / "secret").write_text("1\n")
    assert journal_read(tmp_path, "../secret") == set()
    journal_discard(tmp_path, "../secret")
    assert (tmp_path / "secret").exists()
