"""Progress of long commands: a bar with rate and ETA on a terminal, plain lines with rate and ETA elsewhere."""

import io

from project.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_with_rate_and_eta_at_most_every_few_seconds():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(what="sending", unit="digests", stream=stream, every=10, clock=clock)
    progress.note("planned 1000 due subscriptions")
    for done in range(100, 1001, 100):
        clock.now += 2  # 50 digests a second
        progress.update(done, 1000)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "  planned 1000 due subscriptions"
    assert lines[1] == "  sending: 100/1,000 digests (10%), 50.0 digests/s, ETA 0:18"
    assert lines[2].startswith("  sending: 600/1,000 digests (60%)")  # ten seconds later, not before
    assert lines[-1] == "  sending: 1,000/1,000 digests (100%), 50.0 digests/s"  # the end, always
    assert len(lines) == 4


def test_a_bar_on_a_terminal():
    stream = Terminal()
    with Progress(what="importing", unit="rows", stream=stream) as progress:
        progress.update(5, 10)
        progress.note("still going")
        progress.update(10, 10)
    output = stream.getvalue()
    assert "\r" in output and "importing: 100%" in output and "10/10" in output
    assert "rows/s" in output and "still going" in output
    assert "\n  still going\n" not in output  # beside the bar, not a line of its own
