"""Every API_* setting with its default, read in one place (project.app_settings)."""

from project.app_settings import AppSettings, Setting

api_settings = AppSettings(
    "API_",
    {
        # Calls one token may make per minute; past it the API answers 429 with Retry-After.
        "API_RATE_PER_MINUTE": Setting(300, int, 1),
        # Hours an Idempotency-Key is remembered, and its answer replayed, after the first call.
        "API_IDEMPOTENCY_HOURS": Setting(24, int, 1),
    },
)
