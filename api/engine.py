"""Everything the API takes from the digest engine, in one module.

Bounce events, digest previews and the dashboard's figures live in `digest`; the API reads
them only through these names, so a move inside `digest` is followed here and nowhere else.
"""

from digest.desk.dashboard import OUTCOMES, deliveries_timeline, readers_timeline
from digest.desk.previews import preview_issue, preview_personalize
from digest.desk.reports import issue_report
from digest.exceptions import RenderError
from digest.models import BounceEvent, BounceKind

__all__ = [
    "OUTCOMES",
    "BounceEvent",
    "BounceKind",
    "RenderError",
    "deliveries_timeline",
    "issue_report",
    "preview_issue",
    "preview_personalize",
    "readers_timeline",
]
