"""`/healthz`: what a load balancer sees when the database answers, and when it does not."""

import os
import subprocess
import sys

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_with_one_query_and_no_caching(django_assert_num_queries):
    with django_assert_num_queries(1):
        response = Client().get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok\n")
    assert "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response


def test_healthz_answers_a_balancer_probing_by_ip_over_plain_http(settings):
    # Production settings: HTTPS redirect and host checks, which would answer 301 and 400 here.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["news.example.com"]
    balancer = Client(HTTP_HOST="10.0.0.7:8000")
    assert balancer.get("/healthz").status_code == 200
    assert balancer.head("/healthz").status_code == 200
    assert balancer.get("/").status_code == 400  # every other page keeps both checks
    assert Client(HTTP_HOST="news.example.com").get("/").status_code == 301


def test_healthz_answers_503_when_the_database_is_down(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    # Nothing listens on port 1: the connection is refused, as when PostgreSQL is down.
    env.update(DATABASE_URL="postgres://postgres@127.0.0.1:1/gone", VAR_DIR=str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "project.settings"
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); print(r.status_code, r['Cache-Control'], r.content.decode(), sep='|')"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    status, cache_control, body = result.stdout.split("|", 2)
    assert status == "503" and "no-store" in cache_control
    assert body.startswith("database unavailable: OperationalError")
