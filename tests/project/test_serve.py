"""The production server as `make serve` and the systemd unit start it: gunicorn with project/gunicorn.py, DEBUG=0."""

import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from newsletters.models import Subscription, SubscriptionStatus
from newsletters.tokens import unsubscribe_url
from tests.digest.test_processes import database_url
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)

GUNICORN = Path(sys.executable).with_name("gunicorn")
SECRET_KEY = "k3Jq9-vTzR2wLp8sXm4nYb6cHd0fGe1aUo7iQr5tWs3xZy9vBn"


@pytest.fixture
def server(tmp_path):
    """Start gunicorn on a free loopback port (PORT=0); yield its base URL and the collected static root."""
    env = os.environ | {
        "DEBUG": "0",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": "http://127.0.0.1",
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(tmp_path),
        "PORT": "0",
        "WEB_CONCURRENCY": "2",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        env=env,
        check=True,
        timeout=120,
    )
    process = subprocess.Popen(
        [str(GUNICORN), "--config", "project/gunicorn.py", "project.wsgi"], env=env, stderr=subprocess.PIPE, text=True
    )
    listening = threading.Event()
    found = {}

    def read_log():
        for line in process.stderr:
            if match := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line):
                found["url"] = match.group(1)
                listening.set()

    threading.Thread(target=read_log, daemon=True).start()
    try:
        assert listening.wait(timeout=60), "gunicorn did not start listening"
        yield found["url"], tmp_path / "static"
    finally:
        process.terminate()
        process.wait(timeout=30)


def fetch(url: str, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_gunicorn_serves_pages_static_files_health_and_one_click(server, settings):
    url, static_root = server
    settings.SECRET_KEY = SECRET_KEY  # the links this test makes are signed as the server's
    subscription = SubscriptionFactory()
    status, _, body = fetch(f"{url}/")
    assert status == 200 and b'<select name="timezone"' in body
    assert fetch(f"{url}/healthz")[0] == 200
    # Static files under their hashed names, compressed, cached for ever.
    hashed = json.loads((static_root / "staticfiles.json").read_text())["paths"]["admin/css/base.css"]
    status, headers, _ = fetch(f"{url}/static/{hashed}", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and "immutable" in headers["Cache-Control"] and headers["Content-Encoding"] == "gzip"
    # DEBUG is off: an unknown page is a plain 404, not Django's debug page.
    status, _, body = fetch(f"{url}/n/nothing-here/")
    assert status == 404 and b"Traceback" not in body and b"URLconf" not in body
    one_click = url + urlsplit(unsubscribe_url(subscription.pk)).path
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert fetch(one_click, b"List-Unsubscribe=One-Click\r\n", headers)[0] == 200
    assert Subscription.objects.get().status == SubscriptionStatus.UNSUBSCRIBED
