"""Progress of long commands: a bar with rate and ETA on a terminal, plain lines otherwise.

On a terminal, tqdm draws one bar (rate, ETA) and shows step messages beside it. Elsewhere
(cron, a pipe, a log file) each message is a line, and the count is a line with its rate
and ETA at most every `every` seconds and at the end, so logs stay readable.
"""

import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Report `done` of `total` items, as a bar on a terminal or as log lines elsewhere."""

    def __init__(
        self,
        *,
        what: str,
        unit: str,
        stream: TextIO,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        # A Django command's OutputWrapper ends every write with a newline, which breaks a bar.
        self.stream = getattr(stream, "_out", stream)
        self.what, self.unit, self.every, self.clock = what, unit, every, clock
        self.terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar: tqdm | None = None
        self.started = clock()
        self.last_line = float("-inf")
        self.done = self.total = 0

    def note(self, message: str) -> None:
        """A step of the work: beside the bar on a terminal, a line elsewhere."""
        if self.bar is not None:
            self.bar.set_postfix_str(message, refresh=True)
        else:
            self.stream.write(f"  {message}\n")
            self.stream.flush()

    def update(self, done: int, total: int) -> None:
        """Move to `done` of `total`."""
        self.done, self.total = done, total
        if self.terminal:
            if self.bar is None:
                self.bar = tqdm(
                    total=total, desc=self.what, unit=f" {self.unit}", file=self.stream, dynamic_ncols=True, leave=True
                )
            self.bar.total = total
            self.bar.update(done - self.bar.n)
            return
        now = self.clock()
        if done >= total or now - self.last_line >= self.every:
            self.last_line = now
            self.stream.write(f"  {self.line(now)}\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        """The count as a log line: done of total, percentage, rate and time left."""
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        percent = 100 * self.done / self.total if self.total else 100
        left = (self.total - self.done) / rate if rate else None
        eta = f", ETA {_duration(left)}" if left is not None and self.done < self.total else ""
        return f"{self.what}: {self.done:,}/{self.total:,} {self.unit} ({percent:.0f}%), {rate:,.1f} {self.unit}/s{eta}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
