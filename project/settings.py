"""Settings for the digest engine, read from the environment with local defaults.

Every variable is listed in docs/operating/configuration.md (tests/project/test_docs.py checks it).
"""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from project.env import (
    env_bool,
    env_cache,
    env_database,
    env_emails,
    env_int,
    env_list,
    env_prefixed,
    env_proxy_ssl_header,
    env_str,
    env_tasks,
    env_url,
    mailer_from_url,
    mailers_from_urls,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY)
# Django's security.W009 rule: tokens in every mail are signed with this key.
if not DEBUG and (
    SECRET_KEY == _DEV_SECRET_KEY
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
    or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a long random value when DEBUG is off (at least 50 characters, "
        "5 of them different, not 'django-insecure-…'); make one with: "
        'python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )

# Staff must set up a second factor (an authenticator app) before any other admin page opens.
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA", False)
# The name authenticator apps show beside the user's login.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Digest engine")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must start with http:// or https://.")

TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE={TIME_ZONE!r} is not an IANA time zone such as Europe/Paris.") from None
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"
# The languages reader pages and mails are shipped in (locale/<code>/LC_MESSAGES/django.po):
# a reader's language is one of these, chosen from Accept-Language at subscribe.
# Adding one: docs/operating/configuration.md, "Languages".
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
    ("ar", "العربية"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]

DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Digest <digest@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
ADMINS = env_emails("ADMINS", [])

# Local capture server started by `manage.py devserver` (README, "Two commands").
LOCAL_SMTP_PORT = env_int("LOCAL_SMTP_PORT", 8025)
LOCAL_MAIL_DIR = VAR_DIR / "mail"

_EMAIL_URL = env_str("EMAIL_URL", f"smtp://127.0.0.1:{LOCAL_SMTP_PORT}")
MAILERS = {
    "default": mailer_from_url("EMAIL_URL", _EMAIL_URL),
    "digest": mailer_from_url(
        "DIGEST_EMAIL_URL" if env_url("DIGEST_EMAIL_URL", "") else "EMAIL_URL",
        env_url("DIGEST_EMAIL_URL", "") or _EMAIL_URL,
    ),
}
# Any number of relays for digests, used round-robin: DIGEST_MAILERS as mail URLs (relay1,
# relay2, … in MAILERS), or as MAILERS aliases (digest.conf) when it holds no URL.
if "://" in env_str("DIGEST_MAILERS", ""):
    MAILERS |= mailers_from_urls("DIGEST_MAILERS", env_str("DIGEST_MAILERS", ""))
    DIGEST_MAILERS = ",".join(alias for alias in MAILERS if alias.startswith("relay"))

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # On disk, so tests that start real sender processes share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django_crontab",
    "anymail",
    "django_tasks_db",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "newsletters",
    "digest",
    "hooks",
    "staff",
    "feeds",
    "api",
    # Serves the API docs' Swagger UI from our own static files, not a CDN.
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Pages in the visitor's language (Accept-Language among LANGUAGES); pages reached by a
    # reader's own link switch to that reader's language (newsletters.languages).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether a second factor confirmed this session (staff/).
    "django_otp.middleware.OTPMiddleware",
    "staff.middleware.TwoFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Calls under /api/: Idempotency-Key, problem bodies for unknown paths, one log line each.
    "api.middleware.ApiMiddleware",
]

# Content-Security-Policy on every page (Django's own, docs/operating/deployment.md): scripts
# only from this site, or inline with the page's nonce; no plugins, no <base>, forms post here.
# Styles may be inline: the admin's templates use style attributes, and a digest's HTML (its
# CSS inlined by premailer) shows in the editors' sandboxed preview frames, which inherit the
# page's policy. Images may come from anywhere: issues show pictures hosted elsewhere.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "https:", "http:", "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.SELF],
}

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# NEWSLETTERS_* and DIGEST_* settings are read (from here, or from the environment variable
# of the same name) with their defaults in newsletters/conf.py and digest/conf.py.

# Rate limits live in the cache: share it (Redis) when several web processes run.
CACHES = {"default": env_cache("CACHE_URL", "locmem://")}

# The digest job's cron schedule, here because CRONJOBS needs it (digest/conf.py checks it).
DIGEST_CRON_SCHEDULE = env_str("DIGEST_CRON_SCHEDULE", "") or "*/5 * * * *"

# django-crontab: `manage.py crontab add` installs these; see docs/operating/scheduling.md.
(VAR_DIR / "log").mkdir(parents=True, exist_ok=True)
CRONJOBS = [
    (
        DIGEST_CRON_SCHEDULE,
        "digest.cron.send_digests_job",
        f">> {VAR_DIR / 'log' / 'digest-cron.log'} 2>&1",
    ),
    # Outgoing webhooks (hooks.cron): retries, and every delivery when tasks run inline.
    (
        env_str("HOOKS_CRON_SCHEDULE", "") or "* * * * *",
        "hooks.cron.deliver_webhooks_job",
        f">> {VAR_DIR / 'log' / 'hooks-cron.log'} 2>&1",
    ),
    # New posts of the feeds newsletters follow, as issues (feeds/).
    (
        env_str("FEEDS_CRON_SCHEDULE", "") or "*/15 * * * *",
        "feeds.cron.fetch_feeds_job",
        f">> {VAR_DIR / 'log' / 'feeds-cron.log'} 2>&1",
    ),
]
# ESP events through django-anymail's tracking webhooks (digest.returns.webhooks): every ANYMAIL_<NAME>
# variable becomes ANYMAIL["<NAME>"], e.g. ANYMAIL_WEBHOOK_SECRET=user:password (required: the
# endpoints answer 404 without it) and ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY.
ANYMAIL = env_prefixed("ANYMAIL_")

# Returned mail (bounces, complaints): the mailbox process_bounces reads, e.g.
# imaps://user:pass@mail.example.org/INBOX (docs/operating/bounces.md).
BOUNCE_MAILBOX_URL = env_url("BOUNCE_MAILBOX_URL", "")
if BOUNCE_MAILBOX_URL:
    CRONJOBS.append(
        (
            env_str("DIGEST_BOUNCE_CRON_SCHEDULE", "") or "*/10 * * * *",
            "digest.cron.process_bounces_job",
            f">> {VAR_DIR / 'log' / 'bounces-cron.log'} 2>&1",
        )
    )
CRONTAB_LOCK_JOBS = True
CRONTAB_DJANGO_MANAGE_PATH = str(BASE_DIR / "manage.py")
CRONTAB_COMMENT = "django-cronjobs for digest-engine"
# Cron starts jobs with an almost empty environment: load the settings' variables from a file.
if env_str("DIGEST_ENV_FILE", ""):
    CRONTAB_COMMAND_PREFIX = f"set -a; . {env_str('DIGEST_ENV_FILE', '')}; set +a;"

# Background work (Django's Tasks framework): where the digest job's send tasks run.
# immediate:// inline in the cron process (default); database:// (django-tasks-db) or
# rq://host:port/db (django-tasks-rq) for workers; see docs/operating/deployment.md, "Running workers".
_TASKS_BACKEND, RQ_QUEUES = env_tasks("TASKS_URL", "immediate://")
TASKS = {"default": _TASKS_BACKEND}
if RQ_QUEUES:
    INSTALLED_APPS.append("django_rq")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"timed": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
    "loggers": {
        "digest": {"handlers": ["console"], "level": env_str("DIGEST_LOG_LEVEL", "INFO")},
        "newsletters": {"handlers": ["console"], "level": "INFO"},
        "hooks": {"handlers": ["console"], "level": "INFO"},
        "feeds": {"handlers": ["console"], "level": "INFO"},
        # One line per API call, with the token's name (api.middleware).
        "api": {"handlers": ["console"], "level": env_str("API_LOG_LEVEL", "INFO")},
        # Where django-crontab reports a failing job; without this it would vanish.
        "django_crontab": {"handlers": ["console"], "level": "INFO"},
    },
}

# ---- Serving the web in production (docs/operating/deployment.md) ----------------------
# Health checks answer before host checks and HTTPS redirects (project/health.py); whitenoise
# serves collected static files from the WSGI server; HTTPS settings default on when DEBUG is
# off and SITE_URL is https://, so `manage.py check --deploy` is clean; each can be overridden.
MIDDLEWARE.insert(0, "project.health.HealthCheckMiddleware")
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "whitenoise.middleware.WhiteNoiseMiddleware"
)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise reads it at start-up, collected or not
if not DEBUG:
    # Hashed, compressed file names, cached for ever by browsers; needs `manage.py collectstatic`.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
_HTTPS = SITE_URL.startswith("https://") and not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Behind a proxy that terminates TLS: the header it sets, e.g. X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# One database connection per web worker, kept between requests (0: a new one per request).
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0 if DEBUG else 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
