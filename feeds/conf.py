"""Every FEEDS_* setting with its default, read in one place (project.app_settings)."""

from project.app_settings import AppSettings, Setting

feeds_settings = AppSettings(
    "FEEDS_",
    {
        # Seconds to connect and between bytes of one feed's answer.
        "FEEDS_TIMEOUT": Setting(10.0, float, 0.1),
        # Largest feed document read, in bytes; a larger one is refused unread past this.
        "FEEDS_MAX_BYTES": Setting(5 * 1024 * 1024, int, 1024),
        # Most items one issue gathers (the newest); the rest are noted as seen.
        "FEEDS_MAX_ITEMS": Setting(30, int, 1),
    },
)
