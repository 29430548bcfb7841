"""What the deliverability check reports: one finding per thing checked, with the DNS record to publish."""

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    ERROR = "error"  # mail is rejected or fails DMARC: fix before sending
    WARNING = "warning"  # mail goes out, but something is wrong or obsolete
    INFO = "info"  # optional, or not checkable from here
    OK = "ok"


@dataclass(frozen=True)
class Finding:
    """One result: a stable code (what tests and scripts match), the domain, a sentence, and what to publish."""

    level: Level
    code: str
    domain: str
    message: str
    publish: str = ""  # a zone file line ready to paste, or the setting to change; "" when nothing is to do


def zone_txt(name: str, value: str) -> str:
    """A TXT record as a zone file line; strings over 255 characters are split (RFC 1035, 3.3)."""
    strings = " ".join(f'"{value[start : start + 250]}"' for start in range(0, len(value), 250)) or '""'
    return f"{name.rstrip('.')}. IN TXT {strings}"
