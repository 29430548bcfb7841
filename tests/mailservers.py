"""Real mail servers for tests, each a private instance under a temporary directory on free loopback ports.

Dovecot (IMAP and POP3) and Postfix are Debian's packages (`make mailservers` installs
them). Without them a test skips, except on CI (CI=true), where it fails.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.smtp import free_port


def require(program: str, package: str) -> str:
    """Return a program's path; skip the test without it (fail on CI)."""
    path = shutil.which(program) or (f"/usr/sbin/{program}" if Path(f"/usr/sbin/{program}").exists() else None)
    if path is None:
        message = f"{program} is missing; `make mailservers` installs Debian's {package}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def process_stop(process: subprocess.Popen) -> None:
    """Stop a server the tests started: SIGTERM, then SIGKILL if it has not ended within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_port(port: int, *, process: subprocess.Popen | None, log: Path, timeout: float = 30) -> None:
    """Return once something accepts connections on the port; fail if the server exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # the server is starting: poll the port again
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s: {log.read_text()}")


class Dovecot:
    """A private Dovecot serving one user's Maildir over IMAP and POP3 (plaintext, loopback only)."""

    user = "bounces"
    password = "s3cret pass/word"

    def __enter__(self) -> "Dovecot":
        binary = require("dovecot", "dovecot-imapd and dovecot-pop3d")
        self._tmp = tempfile.TemporaryDirectory(prefix="dovecot-")
        root = Path(self._tmp.name)
        os.chmod(root, 0o755)  # its login processes run as dovenull and must reach base_dir
        self.imap_port, self.pop3_port = free_port(), free_port()
        # Dovecot refuses to give mail access as root: run mail processes as the dovecot user then.
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            account = pwd.getpwnam("dovecot")
            uid, gid = account.pw_uid, account.pw_gid
        mail = root / "mail"
        mail.mkdir()
        os.chown(mail, uid, gid)
        (root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        self.log = root / "dovecot.log"
        config = root / "dovecot.conf"
        login_user = "dovenull" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        internal_user = "dovecot" if os.getuid() == 0 else login_user
        config.write_text(
            f"""
protocols = imap pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u
first_valid_uid = {uid}
default_login_user = {login_user}
default_internal_user = {internal_user}
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""
        )
        self.process = subprocess.Popen([binary, "-F", "-c", str(config)], stderr=subprocess.PIPE)
        try:
            wait_for_port(self.imap_port, process=self.process, log=self.log)
            wait_for_port(self.pop3_port, process=self.process, log=self.log)
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        return self

    def url(self, scheme: str, path: str = "/INBOX", query: str = "") -> str:
        from urllib.parse import quote

        port = self.imap_port if scheme.startswith("imap") else self.pop3_port
        return f"{scheme}://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{port}{path}{query}"

    def __exit__(self, *exc) -> None:
        process_stop(self.process)
        self._tmp.cleanup()


_POSTFIX_SERVICES = """\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """A private Postfix relay: accepts mail from loopback on a free port and relays each domain of
    `routes` to 127.0.0.1:port. It gives up at the first failure (no queue lifetime), so a 4xx
    answer comes back as a DSN at once, as a 5xx does.

    Its configuration, queue and log live in a temporary directory; it needs root (Postfix's
    master drops privileges to the postfix user itself).
    """

    def __init__(self, routes: dict[str, int]):
        self.routes = routes

    def __enter__(self) -> "Postfix":
        self.binary = require("postfix", "postfix")
        if os.getuid() != 0:
            message = "a private Postfix instance needs root"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self._tmp = tempfile.TemporaryDirectory(prefix="postfix-", ignore_cleanup_errors=True)
        root = Path(self._tmp.name)
        os.chmod(root, 0o755)
        self.config = root / "etc"
        for sub in ("etc", "queue", "data"):
            (root / sub).mkdir()
        shutil.chown(root / "data", user="postfix")
        self.port = free_port()
        self.log = root / "postfix.log"
        transport = ", ".join(f"{domain}=smtp:[127.0.0.1]:{port}" for domain, port in self.routes.items())
        (self.config / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.test
mydomain = relay.test
myorigin = relay.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
transport_maps = inline:{{ {transport} }}
smtp_dns_support_level = disabled
alias_maps =
alias_database =
biff = no
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
maillog_file = {self.log}
maillog_file_prefixes = {root}
"""
        )
        (self.config / "master.cf").write_text(f"127.0.0.1:{self.port} inet n - n - - smtpd\n" + _POSTFIX_SERVICES)
        result = subprocess.run(
            [self.binary, "-c", str(self.config), "start"], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode:
            log = self.log.read_text() if self.log.exists() else ""
            self._tmp.cleanup()
            raise RuntimeError(f"postfix did not start: {result.stderr}{log}")
        try:
            wait_for_port(self.port, process=None, log=self.log)  # `postfix start` returns before master listens
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        return self

    def mailer(self) -> dict:
        return {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 30},
        }

    def __exit__(self, *exc) -> None:
        subprocess.run([self.binary, "-c", str(self.config), "stop"], capture_output=True, timeout=60, check=False)
        self._tmp.cleanup()
