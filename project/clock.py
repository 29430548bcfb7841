"""The one clock every machine agrees on: the database's.

Senders, cron and web servers may run on machines whose clocks disagree by minutes. What
must be compared across machines (when an issue was published, when a window closes, when
a claim expires) is stamped and compared on the database server's clock. On SQLite the
database is a file on this machine, so its clock is this machine's.
"""

import datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone


def db_now(*, using: str = DEFAULT_DB_ALIAS, connection=None) -> datetime.datetime:
    """Return the database server's current time (aware, UTC); `connection` overrides the thread's own."""
    connection = connection or connections[using]
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0].astimezone(datetime.UTC)
