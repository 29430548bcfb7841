"""Read settings from environment variables; every error names the variable."""

import os
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    """Return the variable's value, or the default when it is unset."""
    return os.environ.get(name, default)


def env_prefixed(prefix: str) -> dict[str, str]:
    """Return every non-empty variable starting with the prefix, keyed by the rest of its name."""
    return {name.removeprefix(prefix): value for name, value in os.environ.items() if name.startswith(prefix) and value}


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean variable (1/0, true/false, yes/no, on/off)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int | None = None) -> int:
    """Parse an integer variable."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set.")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """Parse `Header-Name` or `Header-Name=value` (value `https` by default) into SECURE_PROXY_SSL_HEADER."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    header, _, value = raw.partition("=")
    header, value = header.strip(), value.strip() or "https"
    if not header.replace("-", "").replace("_", "").isalnum():
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a header name such as X-Forwarded-Proto (or X-Forwarded-Proto=https)."
        )
    return "HTTP_" + header.upper().replace("-", "_"), value


def env_list(name: str, default: list[str]) -> list[str]:
    """Split a comma-separated variable into a list of stripped, non-empty items."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_emails(name: str, default: list[str]) -> list[str]:
    """Parse a comma-separated list of email addresses, rejecting malformed ones."""
    addresses = env_list(name, default)
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ImproperlyConfigured(f"{name} contains {address!r}, which is not an email address.") from None
    return addresses


def env_url(name: str, default: str) -> str:
    """Return a URL variable, or the default when unset; set but empty is a mistake, not the default."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.strip():
        instead = f"the default ({default})" if default else "the default"
        raise ImproperlyConfigured(f"{name} is set but empty: unset it to use {instead}, or give a URL.")
    return raw.strip()


def url_shown(url: str) -> str:
    """Return a URL fit for an error message or a log: its password replaced by ***, quoted like repr()."""
    parts = urlsplit(url)
    try:
        password = parts.password
    except ValueError:
        password = None
    if password:
        user, _, host = parts.netloc.rpartition("@")
        url = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}").geturl()
    return repr(url)


def _without(text: str, url: str) -> str:
    """Return an error text with the URL's password, should the library have quoted it, replaced by ***."""
    password = urlsplit(url).netloc.rpartition("@")[0].partition(":")[2]
    for form in {password, unquote(password)} - {""}:
        text = text.replace(form, "***")
    return text


def env_database(name: str, default: str) -> dict:
    """Turn a database URL (sqlite:///path, postgres://user@host/db) into a DATABASES entry."""
    url = env_url(name, default)
    try:
        config = dj_database_url.parse(url)
    except (ValueError, KeyError) as error:
        raise ImproperlyConfigured(
            f"{name}={url_shown(url)} is not a supported database URL: {_without(str(error), url)}"
        ) from None
    engine = config.get("ENGINE", "")
    if not engine.endswith(("sqlite3", "postgresql")):
        raise ImproperlyConfigured(f"{name}={url_shown(url)}: only sqlite:// and postgres:// databases are supported.")
    if engine.endswith("sqlite3"):
        # Several processes share one SQLite file (web, scheduler, senders): wait for
        # the write lock instead of failing at once, and take it at BEGIN.
        config.setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
        name_ = str(config.get("NAME") or "")
        if name_ and name_ != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(name_)), exist_ok=True)
    return config


def env_cache(name: str, default: str) -> dict:
    """Turn a cache URL (locmem://, redis://host:6379/0) into a CACHES entry."""
    url = env_url(name, default)
    scheme = urlsplit(url).scheme
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if scheme in ("redis", "rediss"):
        try:
            _ = urlsplit(url).port  # read to check it: redis-py would fail only on the first request
        except ValueError:
            raise ImproperlyConfigured(f"{name}={url_shown(url)}: the port is not a number.") from None
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ImproperlyConfigured(f"{name}={url_shown(url)}: use locmem:// or redis://host:port/db.")


def env_tasks(name: str, default: str) -> tuple[dict, dict | None]:
    """Turn a task backend URL into a TASKS entry, and the RQ_QUEUES setting RQ needs (else None).

    immediate:// runs tasks inline; database:// queues them in the database
    (django-tasks-db, workers: manage.py db_worker); rq://host:port/db in Redis
    (django-tasks-rq, workers: manage.py rqworker).
    """
    url = env_url(name, default)
    parts = urlsplit(url)
    if parts.scheme == "immediate":
        return {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}, None
    if parts.scheme == "database":
        return {"BACKEND": "django_tasks_db.DatabaseBackend"}, None
    if parts.scheme == "rq":
        if not parts.hostname:
            raise ImproperlyConfigured(f"{name}={url_shown(url)}: name the Redis host, as in rq://127.0.0.1:6379/0.")
        try:
            port = parts.port or 6379
            database = int(parts.path.strip("/") or 0)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}={url_shown(url)}: the port and the database are numbers, as in rq://127.0.0.1:6379/0."
            ) from None
        credentials = parts.netloc.rpartition("@")[0]
        redis_url = f"redis://{credentials + '@' if credentials else ''}{parts.hostname}:{port}/{database}"
        # RQ stops a job after 180 s by default; a send task drains the whole ledger, which
        # takes as long as the list is large (its claims guard against a stuck one).
        return {"BACKEND": "django_tasks_rq.RQBackend"}, {"default": {"URL": redis_url, "DEFAULT_TIMEOUT": 24 * 3600}}
    raise ImproperlyConfigured(f"{name}={url_shown(url)}: use immediate://, database:// or rq://host:port/db.")


_MAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}


# Seconds an SMTP relay may take to greet or answer, unless the URL says ?timeout=: a relay
# that never answers is given up on after it, never waited for forever.
MAIL_TIMEOUT = 30.0


def mailer_from_url(name: str, url: str) -> dict:
    """Turn a mail URL into one MAILERS entry.

    smtp://user:password@host:port?tls=1&timeout=10 (STARTTLS with tls=1),
    smtps://user:password@host:port (implicit TLS), console://, file:///path,
    locmem://, dummy://. `name` is the environment variable, for errors.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _MAIL_BACKENDS:
        known = ", ".join(f"{s}://" for s in _MAIL_BACKENDS)
        raise ImproperlyConfigured(f"{name}={url_shown(url)}: unknown scheme {parts.scheme!r}; use one of {known}.")
    backend = {"BACKEND": _MAIL_BACKENDS[scheme]}
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if scheme == "file":
        path = unquote(parts.path)
        if not path:
            raise ImproperlyConfigured(f"{name}={url_shown(url)}: a file:// mail URL needs a directory path.")
        return backend | {"OPTIONS": {"file_path": path}}
    if scheme not in ("smtp", "smtps"):
        return backend
    if not parts.hostname:
        raise ImproperlyConfigured(f"{name}={url_shown(url)}: an SMTP mail URL needs a host.")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={url_shown(url)}: the port is not a number.") from None
    options: dict = {"host": parts.hostname}
    if port:
        options["port"] = port
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password or "")
    if scheme == "smtps":
        options["use_ssl"] = True
    unknown = set(query) - {"tls", "timeout"}
    if unknown:
        raise ImproperlyConfigured(
            f"{name}={url_shown(url)}: unknown parameter(s) {', '.join(sorted(unknown))}; use tls, timeout."
        )
    if "tls" in query:
        if query["tls"].lower() not in _TRUE | _FALSE:
            raise ImproperlyConfigured(f"{name}={url_shown(url)}: tls must be 1 or 0.")
        if query["tls"].lower() in _TRUE:
            if scheme == "smtps":
                raise ImproperlyConfigured(f"{name}={url_shown(url)}: smtps:// is already TLS; drop tls=1.")
            options["use_tls"] = True
    try:
        options["timeout"] = float(query.get("timeout", MAIL_TIMEOUT))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={url_shown(url)}: timeout must be a number of seconds.") from None
    return backend | {"OPTIONS": options}


def mailers_from_urls(name: str, value: str) -> dict[str, dict]:
    """Turn a list of mail URLs (comma- or space-separated) into MAILERS entries named relay1, relay2, …"""
    urls = value.replace(",", " ").split()
    return {f"relay{n}": mailer_from_url(f"{name} (URL {n})", url) for n, url in enumerate(urls, 1)}
