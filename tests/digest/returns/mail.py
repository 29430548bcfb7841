"""Helpers for the tests of returned mail: sent deliveries, VERP-addressed reports, samples."""

import datetime
import importlib.metadata
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from digest.models import Delivery, DeliveryStatus
from digest.planning.message_ids import installation_key, message_id_for
from digest.verp import verp_token
from tests.factories import SubscriptionFactory

BOUNCE_ADDRESS = "bounces@bounces.example.org"
SAMPLES = Path(__file__).parent / "returned"
WINDOW_END = datetime.datetime(2026, 6, 2, 8, 0, tzinfo=datetime.UTC)


def sent_delivery(email: str = "ada@example.com", **subscription) -> Delivery:
    """A digest sent to `email`, as a run leaves it in the ledger."""
    subscription = SubscriptionFactory(subscriber__email=email, **subscription)
    return Delivery.objects.create(
        subscription=subscription,
        newsletter=subscription.newsletter,
        window_start=WINDOW_END - datetime.timedelta(days=1),
        window_end=WINDOW_END,
        status=DeliveryStatus.SENT,
        sent_at=WINDOW_END,
        message_id=message_id_for(subscription.pk, WINDOW_END, installation=installation_key()),
    )


def verp_address(delivery: Delivery) -> str:
    local, _, domain = BOUNCE_ADDRESS.partition("@")
    return f"{local}+{verp_token(delivery.pk)}@{domain}"


def delivered_to(raw: bytes, address: str) -> bytes:
    """Prepend the Delivered-To header the MTA adds when it stores a message in the bounce mailbox."""
    return f"Delivered-To: {address}\n".encode() + raw


def sample(name: str, **values) -> bytes:
    """A report written for these tests (tests/digest/returns/returned/), with {placeholders} filled in."""
    text = (SAMPLES / name).read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text.replace("\n", "\r\n").encode()


def flufl_corpus() -> Path:
    """flufl.bounce's sample bounces, from the sdist of the installed version, kept under var/.

    pip downloads the sdist once (PyPI); its tests/data/*.txt are extracted. Without PyPI
    the tests skip, except on CI.
    """
    version = importlib.metadata.version("flufl.bounce")
    target = Path(settings.BASE_DIR) / "var" / "flufl-bounce" / version
    if (target / "dsn_01.txt").is_file():
        return target
    with tempfile.TemporaryDirectory() as download:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps"]
            + [f"flufl.bounce=={version}", "-d", download],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        archives = list(Path(download).glob("*.tar.gz"))
        if result.returncode or not archives:
            message = f"cannot download flufl.bounce {version}'s sdist: {result.stderr[-500:]}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                if member.isfile() and "/tests/data/" in member.name and member.name.endswith(".txt"):
                    data = archive.extractfile(member).read()
                    (target / Path(member.name).name).write_bytes(data)
    return target


def mbox_of(messages: list[bytes]) -> bytes:
    """An mbox file (mboxrd quoting is not needed: these have no "From " lines at line starts)."""
    out = io.BytesIO()
    for raw in messages:
        out.write(b"From MAILER-DAEMON Mon Jun  1 00:00:00 2026\n")
        out.write(raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From "))
        out.write(b"\n\n")
    return out.getvalue()
