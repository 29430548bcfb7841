"""Settings come from the environment; a wrong value stops start-up and names the variable."""

import json
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.env import env_bool, env_database, env_emails, mailer_from_url


def test_smtp_url_with_user_password_tls_and_timeout():
    config = mailer_from_url("EMAIL_URL", "smtp://me%40x.org:p%2Fss@mail.example.com:587?tls=1&timeout=7.5")
    assert config == {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": "mail.example.com",
            "port": 587,
            "username": "me@x.org",
            "password": "p/ss",
            "use_tls": True,
            "timeout": 7.5,
        },
    }


def test_smtps_url_uses_implicit_tls():
    config = mailer_from_url("EMAIL_URL", "smtps://mail.example.com")
    assert config["OPTIONS"] == {"host": "mail.example.com", "use_ssl": True, "timeout": 30.0}


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("console://", "console"),
        ("locmem://", "locmem"),
        ("dummy://", "dummy"),
        ("file:///tmp/mails", "filebased"),
    ],
)
def test_non_smtp_backends(url, backend):
    config = mailer_from_url("EMAIL_URL", url)
    assert config["BACKEND"] == f"django.core.mail.backends.{backend}.EmailBackend"
    if backend == "filebased":
        assert config["OPTIONS"] == {"file_path": "/tmp/mails"}


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://mail.example.com", "unknown scheme"),
        ("smtp://", "needs a host"),
        ("smtp://mail.example.com:port", "port is not a number"),
        ("smtp://mail.example.com?tls=maybe", "tls must be 1 or 0"),
        ("smtp://mail.example.com?timeout=soon", "timeout must be a number"),
        ("smtp://mail.example.com?ssl=1", "unknown parameter"),
        ("smtps://mail.example.com?tls=1", "already TLS"),
        ("file://", "needs a directory"),
    ],
)
def test_bad_mail_urls_name_the_variable(url, fragment):
    with pytest.raises(ImproperlyConfigured) as error:
        mailer_from_url("DIGEST_EMAIL_URL", url)
    assert "DIGEST_EMAIL_URL" in str(error.value)
    assert fragment in str(error.value)


def test_bad_database_url_names_the_variable(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/x")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env_database("DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("DATABASE_URL", "nonsense://")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env_database("DATABASE_URL", "sqlite:///x.db")


def test_postgres_database_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example.com:5433/news")
    config = env_database("DATABASE_URL", "sqlite:///x.db")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db.example.com", 5433, "news", "u")


def test_booleans_and_address_lists(monkeypatch):
    monkeypatch.setenv("DEBUG", "off")
    assert env_bool("DEBUG", True) is False
    monkeypatch.setenv("DEBUG", "sometimes")
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env_bool("DEBUG", True)
    monkeypatch.setenv("ADMINS", "a@example.com, b@example.com")
    assert env_emails("ADMINS", []) == ["a@example.com", "b@example.com"]
    monkeypatch.setenv("ADMINS", "a@example.com, not-an-address")
    with pytest.raises(ImproperlyConfigured, match="ADMINS"):
        env_emails("ADMINS", [])


def _check(*args: str, **env) -> subprocess.CompletedProcess:
    """Run `manage.py check` in a fresh process with the given environment."""
    full = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "EMAIL_URL", "DEBUG"}}
    full.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args], env=full, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DEBUG": "0"}, "SECRET_KEY"),
        ({"EMAIL_URL": "smtp://"}, "EMAIL_URL"),
        ({"DIGEST_EMAIL_URL": "pigeon://coop"}, "DIGEST_EMAIL_URL"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE"),
        ({"SITE_URL": "example.com"}, "SITE_URL"),
        ({"DATABASE_URL": "oracle://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": ""}, "DATABASE_URL is set but empty"),
        ({"CACHE_URL": " "}, "CACHE_URL is set but empty"),
        ({"DEBUG": "0", "SECRET_KEY": ""}, "SECRET_KEY"),
        ({"DEBUG": "0", "SECRET_KEY": "x"}, "SECRET_KEY"),
        ({"DEBUG": "0", "SECRET_KEY": "a" * 60}, "SECRET_KEY"),
        ({"DEBUG": "0", "SECRET_KEY": "django-insecure-" + "abcdefghij" * 5}, "SECRET_KEY"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded Proto"}, "SECURE_PROXY_SSL_HEADER"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS"),
        ({"SECURE_SSL_REDIRECT": "maybe"}, "SECURE_SSL_REDIRECT"),
        ({"DATABASE_CONN_MAX_AGE": "forever"}, "DATABASE_CONN_MAX_AGE"),
    ],
)
def test_start_up_fails_with_the_variable_named(env, variable, tmp_path):
    result = _check(VAR_DIR=str(tmp_path), **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEWSLETTERS_RATE_PERIOD": "hourly"}, "NEWSLETTERS_RATE_PERIOD='hourly' is not an integer"),
        ({"DIGEST_BATCH_SIZE": "0"}, "DIGEST_BATCH_SIZE must be at least 1"),
        (
            {"DIGEST_BATCH_SIZE": "2000", "DIGEST_RATE_LIMIT": "1", "DIGEST_CLAIM_TIMEOUT": "60"},
            "DIGEST_BATCH_SIZE=2000 takes 2000 s at DIGEST_RATE_LIMIT=1, more than 10 leases of "
            "DIGEST_CLAIM_TIMEOUT=60 s: set DIGEST_BATCH_SIZE to at most 600",
        ),
        ({"DEFAULT_FROM_EMAIL": "just some text"}, "DEFAULT_FROM_EMAIL"),
        ({"DIGEST_BOUNCE_ADDRESS": "bounces+x@example.org"}, "DIGEST_BOUNCE_ADDRESS"),
        ({"DIGEST_BOUNCE_RATE_WARN": "five percent"}, "DIGEST_BOUNCE_RATE_WARN='five percent' is not a number"),
    ],
)
def test_app_settings_from_the_environment_are_checked_at_start_up(env, message, tmp_path):
    result = _check(VAR_DIR=str(tmp_path), **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_start_up_with_production_values_passes(tmp_path):
    result = _check(
        VAR_DIR=str(tmp_path),
        DEBUG="0",
        SECRET_KEY="k3Jq9-vTzR2wLp8sXm4nYb6cHd0fGe1aUo7iQr5tWs3xZy9vBn",
        ALLOWED_HOSTS="news.example.com",
        SITE_URL="https://news.example.com",
        EMAIL_URL="smtp://relay.example.com:587?tls=1",
    )
    assert result.returncode == 0, result.stderr


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3Jq9-vTzR2wLp8sXm4nYb6cHd0fGe1aUo7iQr5tWs3xZy9vBn",
    "ALLOWED_HOSTS": "news.example.com",
    "SITE_URL": "https://news.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def test_deploy_check_is_clean_with_an_https_site_url(tmp_path):
    result = _check("--deploy", VAR_DIR=str(tmp_path), **PRODUCTION)
    assert result.returncode == 0, result.stderr
    # digest.W001 (no crontab program) depends on the machine, not on the settings.
    assert "security." not in result.stderr and "digest.W004" not in result.stderr, result.stderr


def test_deploy_check_names_what_an_http_site_lacks(tmp_path):
    result = _check("--deploy", VAR_DIR=str(tmp_path), **(PRODUCTION | {"SITE_URL": "http://news.example.com"}))
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016", "digest.W004"):
        assert warning in result.stderr


def _settings_in_a_fresh_process(tmp_path, env: dict, names: list[str]) -> dict:
    full = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DEBUG"}}
    full.update(env, VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="project.settings")
    code = f"import json; from django.conf import settings as s; print(json.dumps([getattr(s, n) for n in {names!r}]))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60, check=True
    )
    return dict(zip(names, json.loads(result.stdout), strict=True))


def test_https_settings_can_be_overridden_one_by_one(tmp_path):
    names = ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER"]
    defaults = _settings_in_a_fresh_process(tmp_path, PRODUCTION, names)
    assert defaults == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    overrides = {
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "3600",
        "SECURE_HSTS_PRELOAD": "no",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Ssl=on",
    }
    assert _settings_in_a_fresh_process(tmp_path, PRODUCTION | overrides, names) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_SSL", "on"],
    }


def test_mail_is_configured_with_mailers_only():
    import project.settings as module

    assert set(module.MAILERS) == {"default", "digest"}
    assert [name for name in vars(module) if name.startswith("EMAIL_")] == []


def _setting(expression: str, *, unset: str, **env):
    """Evaluate `expression` (JSON) in a fresh process whose environment lacks variables ending in `unset`."""
    full = {key: value for key, value in os.environ.items() if not key.endswith(unset)} | env
    code = f"import json; from django.conf import settings; print(json.dumps({expression}))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        env=full,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def _mailers(**env) -> dict:
    return _setting("settings.MAILERS", unset="EMAIL_URL", **env)


def test_digest_mailer_falls_back_to_email_url_and_can_differ():
    same = _mailers(EMAIL_URL="smtp://relay.example.com:2525")
    assert (
        same["digest"]
        == same["default"]
        == {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "relay.example.com", "port": 2525, "timeout": 30.0},
        }
    )
    split = _mailers(EMAIL_URL="smtp://relay.example.com", DIGEST_EMAIL_URL="smtps://bulk.example.com")
    assert split["default"]["OPTIONS"]["host"] == "relay.example.com"
    assert split["digest"]["OPTIONS"] == {"host": "bulk.example.com", "use_ssl": True, "timeout": 30.0}


def test_a_mail_url_without_a_timeout_gets_one():
    # A relay that never greets must not hang every sender: 30 s unless the URL names one.
    assert mailer_from_url("EMAIL_URL", "smtp://relay.example.com")["OPTIONS"]["timeout"] == 30.0
    assert mailer_from_url("EMAIL_URL", "smtp://relay.example.com?timeout=5")["OPTIONS"]["timeout"] == 5.0


def test_any_number_of_digest_relays_from_the_environment():
    urls = "smtp://a.example.com:25, smtp://b.example.com:2525?tls=1 smtps://c.example.com"
    mailers, aliases = _setting("[settings.MAILERS, settings.DIGEST_MAILERS]", unset="EMAIL_URL", DIGEST_MAILERS=urls)
    assert aliases == "relay1,relay2,relay3"
    assert [mailers[alias]["OPTIONS"]["host"] for alias in aliases.split(",")] == [
        "a.example.com",
        "b.example.com",
        "c.example.com",
    ]
    assert mailers["relay2"]["OPTIONS"]["use_tls"] is True


def test_a_bad_relay_url_in_digest_mailers_is_named(tmp_path):
    result = _check(VAR_DIR=str(tmp_path), DIGEST_MAILERS="smtp://a.example.com pigeon://coop")
    assert result.returncode != 0
    assert "DIGEST_MAILERS (URL 2)" in result.stderr


def _cronjobs(**env) -> list:
    return _setting("[job[1] for job in settings.CRONJOBS]", unset="BOUNCE_MAILBOX_URL", **env)


def test_a_bounce_mailbox_adds_its_cron_job(tmp_path):
    always = ["digest.cron.send_digests_job", "hooks.cron.deliver_webhooks_job", "feeds.cron.fetch_feeds_job"]
    assert _cronjobs(VAR_DIR=str(tmp_path)) == always
    with_mailbox = _cronjobs(VAR_DIR=str(tmp_path), BOUNCE_MAILBOX_URL="imaps://u:p@mail.example.org/INBOX")
    assert with_mailbox == [*always, "digest.cron.process_bounces_job"]


SECRET = "hunter2-Secret"


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("DATABASE_URL", f"oracle://app:{SECRET}@db.example.com/news"),
        ("DATABASE_URL", f"postgres://app:{SECRET}@db.example.com:port/news"),
        ("EMAIL_URL", f"smtp://relay:{SECRET}@relay.example.com:abc"),
        ("EMAIL_URL", f"pigeon://relay:{SECRET}@relay.example.com"),
        ("DIGEST_EMAIL_URL", f"smtp://bulk:{SECRET}@bulk.example.com?colour=red"),
        ("TASKS_URL", f"rq://:{SECRET}@redis.example.com:abc/0"),
        ("TASKS_URL", f"celery://:{SECRET}@redis.example.com"),
        ("CACHE_URL", f"memcached://:{SECRET}@cache.example.com"),
        ("CACHE_URL", f"redis://:{SECRET}@cache.example.com:abc/0"),
        ("CACHE_URL", f"redis://:{SECRET.replace('-', '%2D')}@cache.example.com:abc/0"),
    ],
)
def test_a_wrong_url_setting_is_named_without_its_password(variable, url, tmp_path):
    """L1: these errors printed the whole URL, password included."""
    result = _check(VAR_DIR=str(tmp_path), **{variable: url})
    assert result.returncode != 0 and f"ImproperlyConfigured: {variable}=" in result.stderr
    assert "hunter2" not in result.stderr and "***" in result.stderr, result.stderr[-600:]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # L8: it passed start-up, then every subscribe answered 500.
        ({"CACHE_URL": "redis://127.0.0.1:six/0"}, "CACHE_URL='redis://127.0.0.1:six/0': the port is not a number"),
        # Set but empty was silently unset, unlike DATABASE_URL.
        ({"DIGEST_EMAIL_URL": ""}, "DIGEST_EMAIL_URL is set but empty: unset it to use the default, or give a URL"),
        ({"BOUNCE_MAILBOX_URL": " "}, "BOUNCE_MAILBOX_URL is set but empty"),
    ],
)
def test_a_url_setting_that_would_fail_later_is_refused_at_start_up(env, message, tmp_path):
    result = _check(VAR_DIR=str(tmp_path), **env)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-600:]
