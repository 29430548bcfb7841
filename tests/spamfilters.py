"""The spam filters mail providers run, for tests: SpamAssassin's local rules and a private rspamd.

Debian's spamassassin and rspamd (`make spamfilters` installs them). Without them a test
skips, except on CI (CI=true), where it fails. rspamd runs as a private instance under a
temporary directory, on a free loopback port, asking a test DNS server (tests/dnsserver.py)
for every name it looks up, so nothing leaves the machine and the sender's SPF, DKIM and
DMARC records are the test's own.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mailservers import process_stop, wait_for_port
from tests.smtp import free_port

ROOT = Path(__file__).resolve().parents[1]
# rspamd compiles its regular expressions and the 9,000 public suffixes with Hyperscan the
# first time (half a minute on a busy machine); the compiled cache is kept here (git-ignored)
# so later runs start in a second or two.
HYPERSCAN_CACHE = ROOT / "var" / "rspamd-hyperscan"


def require(program: str) -> str:
    """Return a program's path; skip the test without it (fail on CI)."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is missing; `make spamfilters` installs Debian's spamassassin and rspamd"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def mbox(messages: list[bytes]) -> bytes:
    """Messages in one mbox (mboxrd quoting), LF line ends: one spamassassin run reads them all."""
    out = []
    for data in messages:
        data = re.sub(rb"(?m)^(>*From )", rb">\1", data.replace(b"\r\n", b"\n"))
        out.append(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + data.rstrip(b"\n") + b"\n\n")
    return b"".join(out)


@dataclass
class SpamAssassinVerdict:
    score: float
    rules: list[str]


def spamassassin(messages: list[bytes], *, home: Path) -> list[SpamAssassinVerdict]:
    """SpamAssassin's score and rules for each message: local tests only (-L: no DNS, no network).

    One process reads them all (loading the rules is most of a run's second). Its user
    preferences live under `home`, not the user's own.
    """
    binary = require("spamassassin")
    result = subprocess.run(
        # Bayes off: with nothing learnt it scores nothing, and it would learn from these.
        [binary, "-L", "-t", "--mbox", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"],
        input=mbox(messages),
        capture_output=True,
        check=True,
        timeout=120,
        env={**os.environ, "HOME": str(home)},
    )
    # Each message comes back with its X-Spam-Status field: "No, score=-1.0 required=5.0 tests=A,B,\n\tC …".
    found = re.findall(rb"^X-Spam-Status: (.*(?:\n[ \t].*)*)", result.stdout, re.MULTILINE)
    if len(found) != len(messages):
        raise RuntimeError(f"spamassassin reported on {len(found)} of {len(messages)} messages: {result.stderr!r}")
    verdicts = []
    for field in found:
        status = " ".join(field.decode().split())
        score = float(re.search(r"score=(-?[\d.]+)", status).group(1))
        # The list of rules is folded after its commas: "tests=A,B, C autolearn=…".
        tests = re.search(r"tests=(.*?)(?: \w+=|$)", status).group(1).replace(" ", "")
        verdicts.append(SpamAssassinVerdict(score=score, rules=[name for name in tests.split(",") if name]))
    return verdicts


# The top-level file, as Debian's /etc/rspamd/rspamd.conf but with one worker on our port;
# the options that differ are merged over the packaged ones (priority 10, as override.d is).
_CONFIG = """\
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(priority=10) "$LOCAL_CONFDIR/options.inc"
}}
logging {{ type = "file"; filename = "$LOGDIR/rspamd.log"; level = "warning"; }}
worker "normal" {{
    bind_socket = "127.0.0.1:{port}";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}}
"""
_OPTIONS = """\
hs_cache_dir = "{hyperscan}";
control_socket = "$RUNDIR/rspamd.sock mode=0600";
dns {{ nameserver = ["{dns}"]; timeout = 1s; retransmits = 1; }}
"""


class Rspamd:
    """A private rspamd (one scanning worker, no controller) on a free loopback port.

    `dns` is the test DNS server's address (host:port). Start it early: loading the rules
    takes seconds, and `scan` waits for the port.
    """

    def __init__(self, *, dns: str):
        self.binary, self.client = require("rspamd"), require("rspamc")
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="rspamd-")
        self.dir = Path(self._tmp.name)
        for name in ("db", "run", "log"):
            (self.dir / name).mkdir()
        HYPERSCAN_CACHE.mkdir(parents=True, exist_ok=True)
        (self.dir / "rspamd.conf").write_text(_CONFIG.format(port=self.port))
        (self.dir / "options.inc").write_text(_OPTIONS.format(hyperscan=f"{HYPERSCAN_CACHE}/", dns=dns))
        self.log = self.dir / "log" / "rspamd.log"
        self._ready = False

    def __enter__(self) -> "Rspamd":
        variables = [
            f"--var={name}={self.dir / sub}" for name, sub in (("DBDIR", "db"), ("RUNDIR", "run"), ("LOGDIR", "log"))
        ]
        # rspamd refuses to run as root unless told (-i); as any other user it needs nothing.
        insecure = ["-i"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [
                self.binary,
                "-f",
                *insecure,
                "-c",
                str(self.dir / "rspamd.conf"),
                f"--var=LOCAL_CONFDIR={self.dir}",
                *variables,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def scan(self, data: bytes, *, ip: str, helo: str, sender: str, recipient: str) -> dict[str, float]:
        """The symbols rspamd finds in a message as an MX would pass it on (the client's IP, HELO and envelope)."""
        if not self._ready:
            # A cold start compiles the Hyperscan cache: allow it its time once.
            wait_for_port(self.port, process=self.process, log=self.log, timeout=180)
            self._ready = True
        result = subprocess.run(
            [self.client, "-h", f"127.0.0.1:{self.port}", "-j", "-i", ip, "--helo", helo, "--hostname", helo]
            + ["-F", sender, "-r", recipient, "symbols"],
            input=data,
            capture_output=True,
            check=True,
            timeout=60,
        )
        report = json.loads(result.stdout)
        if "symbols" not in report:
            raise RuntimeError(f"rspamd did not scan the message: {report}")
        return {name: symbol["score"] for name, symbol in report["symbols"].items()}

    def __exit__(self, *exc) -> None:
        process_stop(self.process)
        self._tmp.cleanup()
