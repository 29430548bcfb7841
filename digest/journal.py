"""A local, append-only record of the messages a run has handed to SMTP.

Outcomes reach the database once per batch. If the sending process dies mid-batch, the
journal tells a later run (on this machine, or any machine sharing DIGEST_JOURNAL_DIR)
which of the claimed deliveries were already accepted by the server, so only the one
message in flight when the process died can be sent again (with the same Message-ID).
A write per message costs a system call, not a database round trip; the kernel keeps
it when the process is killed.
"""

import os
import re
import threading
from pathlib import Path

_CLAIMANT = re.compile(r"^[0-9a-f]{32}$")


class Journal:
    """The journal of one claimant (one run)."""

    def __init__(self, directory: Path, claimant: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = journal_path(directory, claimant)
        self._handle = self.path.open("a", encoding="ascii")
        self._lock = threading.Lock()  # the pool's connections record from their own threads

    def record(self, delivery_id: int) -> None:
        """Note that the server accepted this delivery's message."""
        with self._lock:
            self._handle.write(f"{delivery_id}\n")
            self._handle.flush()

    def close(self) -> None:
        """Close and delete the journal: every outcome it held is in the database."""
        self._handle.close()
        self.path.unlink(missing_ok=True)


def journal_path(directory: Path, claimant: str) -> Path:
    if not _CLAIMANT.match(claimant):
        raise ValueError(f"not a claimant id: {claimant!r}")
    return directory / f"{claimant}.sent"


def journal_read(directory: Path, claimant: str) -> set[int]:
    """Return the delivery ids a (dead) claimant's journal says were accepted."""
    try:
        text = journal_path(directory, claimant).read_text(encoding="ascii")
    except (FileNotFoundError, ValueError):
        return set()
    # Only lines ended by a newline count: one cut short by a crash ("12" written as "1")
    # could name another delivery.
    return {int(line) for line in text.split("\n")[:-1] if line.isdigit()}


def journal_discard(directory: Path, claimant: str) -> None:
    """Delete a dead claimant's journal once its deliveries are recorded."""
    try:
        os.unlink(journal_path(directory, claimant))
    except (FileNotFoundError, ValueError):
        pass
