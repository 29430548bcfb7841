"""Every HOOKS_* setting with its default, read and checked in one place (project.app_settings).

Each may be set in Django's settings or as an environment variable of the same name.
"""

from project.app_settings import AppSettings, Setting

hooks_settings = AppSettings(
    "HOOKS_",
    {
        # 1: endpoints may be on loopback, private, link-local or other non-public addresses (tests,
        # a receiver on the same machine). 0: such URLs are refused when saved and when delivered,
        # so an admin form cannot be used to make this server call into its own network (SSRF).
        "HOOKS_ALLOW_PRIVATE": Setting(0, int, 0),
        # Seconds the connection, the request and each read of the answer may take.
        "HOOKS_TIMEOUT": Setting(10.0, float, 0.1),
        # At most this many bytes of an answer are read (and the first 1,000 characters kept in the log).
        "HOOKS_MAX_RESPONSE_BYTES": Setting(64 * 1024, int, 0),
        # After a failed attempt an endpoint waits this many seconds, doubling with each failure in
        # a row, at most HOOKS_RETRY_MAX; its events wait, in order, meanwhile.
        "HOOKS_RETRY_BACKOFF": Setting(30, int, 1),
        "HOOKS_RETRY_MAX": Setting(3600, int, 1),
        # An endpoint failing for this many hours in a row is paused, and ADMINS and its owner told.
        "HOOKS_PAUSE_AFTER_HOURS": Setting(24.0, float, 0),
        # The lease of a worker delivering an endpoint's events, in seconds, renewed every quarter
        # of it: another worker takes the endpoint over only once it passed without a renewal.
        "HOOKS_LEASE_SECONDS": Setting(300, int, 1),
        # Delivered events and their attempts are deleted this many days after delivery.
        "HOOKS_KEEP_DAYS": Setting(30, int, 1),
        # Cron schedule of the job that delivers what is due (retries, and everything when tasks run inline).
        "HOOKS_CRON_SCHEDULE": Setting("* * * * *", str),
    },
)
