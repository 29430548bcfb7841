"""`make run` and `make setup` as a newcomer meets them: ports that move together, one line for a taken port, progress."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def make_dry_run(*args: str) -> str:
    """Return the commands `make -n` would run (nothing is run), with a venv that is not there yet."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *args, "VENV=/nonexistent/venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout


def test_make_run_moves_the_site_the_mail_capture_and_the_links_together():
    commands = make_dry_run("run", "PORT=8123", "SMTP_PORT=2626").splitlines()
    manage = [line for line in commands if "manage.py" in line]
    assert manage, commands
    for line in manage:  # migrate, load_demo (which prints the admin link) and the server
        assert "SITE_URL=http://localhost:8123 LOCAL_SMTP_PORT=2626 " in line
    assert manage[-1].endswith("manage.py devserver 127.0.0.1:8123")


def test_make_run_defaults_to_8000_and_8025():
    [server] = [line for line in make_dry_run("run").splitlines() if "devserver" in line]
    assert server.startswith("SITE_URL=http://localhost:8000 LOCAL_SMTP_PORT=8025 ")


def test_make_setup_says_what_it_is_doing():
    commands = make_dry_run("setup")
    assert "--quiet" not in commands
    steps = [line for line in commands.splitlines() if line.startswith("echo") and "== setup" in line]
    assert len(steps) == 3, commands


@pytest.fixture
def taken_port():
    """Listen on a free loopback port, as another program would, and yield it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def devserver(tmp_path, *, web: int, smtp: int) -> subprocess.CompletedProcess:
    env = os.environ | {"VAR_DIR": str(tmp_path), "LOCAL_SMTP_PORT": str(smtp), "DEBUG": "1"}
    env.pop("DATABASE_URL", None)  # the check comes before any database is opened
    return subprocess.run(
        [sys.executable, "manage.py", "devserver", f"127.0.0.1:{web}", "--no-scheduler"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_taken_smtp_port_is_named_in_one_line(tmp_path, taken_port):
    result = devserver(tmp_path, web=free_port(), smtp=taken_port)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert f"Port {taken_port} on 127.0.0.1, for the local SMTP capture, is already in use" in line
    assert "Mailpit and MailHog" in line and "make run SMTP_PORT=" in line
    assert "Traceback" not in result.stderr + result.stdout


def test_a_taken_web_port_is_named_in_one_line(tmp_path, taken_port):
    result = devserver(tmp_path, web=taken_port, smtp=free_port())
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert f"Port {taken_port} on 127.0.0.1 is already in use" in line and "make run PORT=" in line
    assert "Traceback" not in result.stderr + result.stdout
