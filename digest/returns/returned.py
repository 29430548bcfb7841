"""Read one returned message: what it is (bounce, complaint, auto-reply…), which delivery it is about.

- A complaint is an ARF report (RFC 5965: multipart/report; report-type=feedback-report).
- A bounce is recognised by flufl.bounce (Mailman's detectors: RFC 3464 DSNs and the
  formats of Exim, qmail, Exchange, Yahoo and others). It is hard or soft by the DSN's
  status code (5.x.x or 4.x.x) when there is one, else by flufl.bounce's verdict.
- Auto-replies (RFC 3834 Auto-Submitted, vacation and out-of-office headers) and
  reports about a report (a bounce of a bounce) are ignored.

The delivery is named by the VERP token in the address the message came back to (or, in
a complaint, the original's Return-Path), else by the original's Message-ID. Both are
signed (digest.verp, digest.planning.plan), so nobody can aim a report at another reader.
Malformed, oversized or unmatched messages are logged and skipped: they change nothing.

Every header is read as `str` whatever its bytes (`_header`), and what reaches a query
passes `db_text`. Each message is processed in isolation (`returned_read`): whatever one
raises is logged and counted as "ignored (error)", and the mailbox marks it like any other,
so one poison message never stops the ones behind it.
"""

import datetime
import email
import email.policy
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

from django.db import InterfaceError, OperationalError, transaction
from flufl.bounce import all_failures

from digest.conf import digest_settings
from digest.models import BounceKind, Delivery
from digest.returns.policy import Report, bounce_raw_prune, bounce_record, db_text, fingerprint_of
from digest.verp import verp_delivery_id

logger = logging.getLogger(__name__)

# Where the address a message was delivered to shows: set by the delivering MTA (Postfix
# adds Delivered-To and X-Original-To), by the pipe transport, or the plain To.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Delivered-To", "To")
_FEEDBACK_COMPLAINTS = {"abuse", "fraud", "virus", "other"}
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MESSAGE_ID = re.compile(rb"<(digest\.[^<>\s@]+@[^<>\s]+)>", re.IGNORECASE)
# RFC 5322 lines are at most 998 characters; the ledger's Message-IDs are far shorter.
_MESSAGE_ID_MAX = 998
# Lines that may start a MIME part. A report has a handful; the email package and
# flufl.bounce's detectors walk every part, often more than once (10,000 parts took 16 s).
_MAX_PARTS = 500
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery|delivery subsystem|mail system", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto:|out of (the )?office|vacation|abwesenheit)",
    re.IGNORECASE,
)


class Outcome:
    """How the command counts a message."""

    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaints"
    IGNORED = "ignored"
    UNMATCHED = "unmatched"
    DUPLICATE = "already processed"
    ERROR = "ignored (error)"


@dataclass(frozen=True)
class Classified:
    """What one returned message is, and the report the policy gets (None when it gets nothing)."""

    outcome: str
    reason: str
    delivery: Delivery | None = None
    report: Report | None = None


def returned_process(raw: bytes | None, *, source: str, now: datetime.datetime, size: int = 0) -> str:
    """Classify one returned message and apply the policy to it; return its Outcome.

    `raw` is None for a message the mailbox reported larger than DIGEST_BOUNCE_MAX_BYTES.
    """
    classified = returned_classify(raw, source=source, now=now, size=size)
    if classified.report is None:
        logger.info("Returned message from %s %s: %s", source, classified.outcome, classified.reason)
        return classified.outcome
    delivery = classified.delivery
    event = bounce_record(
        report=classified.report, subscriber=delivery.subscription.subscriber, delivery=delivery, now=now
    )
    return classified.outcome if event else Outcome.DUPLICATE


def returned_read(
    read: Callable[[Callable[[bytes | None, int], object]], None],
    *,
    source: str,
    now: datetime.datetime,
    progress: Callable[[str], None] | None = None,
) -> Counter:
    """Process every message a mailbox reader yields; return counts by Outcome.

    Stops (and raises) only when the database cannot be reached or the mailbox fails; what
    was handled until then stays recorded and marked, and the message being handled is not
    marked, so it is read again. Anything else one message raises is logged and counted as
    Outcome.ERROR, its changes rolled back, and the message is marked like any other.
    """
    counts: Counter = Counter()

    def handle(raw: bytes | None, size: int) -> None:
        try:
            with transaction.atomic():
                outcome = returned_process(raw, source=source, now=now, size=size)
        except (OperationalError, InterfaceError):
            raise  # the database is down or gone: not this message's fault, so try it again later
        except Exception:  # noqa: BLE001
            # Hostile input reaches the email package, flufl.bounce and the database; one
            # message that breaks any of them must never stop the others.
            logger.exception("Returned message from %s (%d bytes) cannot be processed: skipped", source, size)
            outcome = Outcome.ERROR
        counts[outcome] += 1
        if progress and sum(counts.values()) % 100 == 0:
            progress(f"{sum(counts.values())} messages read: {summary_line(counts)}")

    read(handle)
    bounce_raw_prune(now=now)
    return counts


def summary_line(counts: Counter) -> str:
    """Return the counts as process_bounces prints them."""
    names = (Outcome.HARD, Outcome.SOFT, Outcome.COMPLAINT, Outcome.IGNORED, Outcome.UNMATCHED, Outcome.DUPLICATE)
    line = ", ".join(f"{counts[name]} {name}" for name in names)
    return f"{line}, {counts[Outcome.ERROR]} {Outcome.ERROR}" if counts[Outcome.ERROR] else line


def returned_classify(raw: bytes | None, *, source: str, now: datetime.datetime, size: int = 0) -> Classified:
    """Tell what a returned message is and which delivery it is about; change nothing."""
    limit = digest_settings.BOUNCE_MAX_BYTES
    if raw is None or len(raw) > limit:
        return Classified(Outcome.IGNORED, f"larger than DIGEST_BOUNCE_MAX_BYTES ({size or len(raw)} > {limit} bytes)")
    if raw.count(b"\n--") > _MAX_PARTS:
        return Classified(Outcome.IGNORED, f"more than {_MAX_PARTS} MIME parts: not a report")
    try:
        message = email.message_from_bytes(raw)
        kind, status, diagnostic = _kind(message)
    except Exception as error:  # noqa: BLE001
        # Hostile input reaches the email package and flufl.bounce's heuristics, which may
        # raise anything on it; one message must never stop the others.
        logger.warning("Returned message from %s cannot be parsed: %r", source, error)
        return Classified(Outcome.IGNORED, f"malformed: {error!r}")
    if kind is None:
        return Classified(Outcome.IGNORED, diagnostic)
    delivery, how = _delivery_of(message, raw, complaint=kind == BounceKind.COMPLAINT)
    if delivery is None:
        return Classified(Outcome.UNMATCHED, how)
    outcome = {BounceKind.HARD: Outcome.HARD, BounceKind.SOFT: Outcome.SOFT}.get(kind, Outcome.COMPLAINT)
    report = Report(
        kind=kind,
        source=source,
        occurred_at=now,
        fingerprint=fingerprint_of(delivery.pk, kind, _header(message, "Message-ID") or fingerprint_of(raw)),
        status=status,
        diagnostic=diagnostic,
        raw=raw[: digest_settings.BOUNCE_RAW_MAX_BYTES].decode("utf-8", "replace"),
    )
    return Classified(outcome, how, delivery, report)


def _kind(message: Message) -> tuple[BounceKind | None, str, str]:
    """Return (kind, status, diagnostic); kind None means ignored, and the diagnostic says why."""
    content_type = message.get_content_type()
    report_type = ""
    if content_type == "multipart/report":  # an RFC 2231 parameter comes as a tuple
        report_type = str(collapse_rfc2231_value(message.get_param("report-type") or "")).lower()
    original = _original(message)
    if original is not None and _is_automatic(original):
        return None, "", "a report about an automatic message (a bounce of a bounce)"
    if report_type == "feedback-report":
        fields = _fields(_part(message, "message/feedback-report"))
        feedback = fields.get("feedback-type", "").strip().lower()
        if feedback not in _FEEDBACK_COMPLAINTS:
            return None, "", f"feedback report of type {feedback or 'none'!r}, not a complaint"
        agent = fields.get("user-agent", "").strip()
        return BounceKind.COMPLAINT, "", f"complaint ({feedback}) from {agent or 'a feedback loop'}"
    if report_type != "delivery-status" and _is_auto_reply(message):
        return None, "", "an auto-reply (RFC 3834, vacation or out of office)"
    status, action, diagnostic = _delivery_status(message)
    if status.startswith("2") or action in ("delivered", "relayed", "expanded"):
        return None, "", f"a delivery notice ({action or status}), not a failure"
    if status.startswith("5"):
        kind = BounceKind.HARD
    elif status.startswith("4"):
        kind = BounceKind.SOFT
    else:  # no DSN status of its own: flufl.bounce's detectors decide (they may raise on 8-bit headers)
        temporary, permanent = all_failures(message)
        if permanent:
            kind = BounceKind.HARD
        elif temporary:
            kind = BounceKind.SOFT
        else:
            return None, "", "not a bounce flufl.bounce recognises"
    if not status:
        # Shown with the event only; a number like a version (2.0.12) in the text is not one.
        code_class = "5" if kind == BounceKind.HARD else "4"
        found = next((m for m in _STATUS.finditer(diagnostic or _text_of(message)) if m.group(1) == code_class), None)
        status = found.group(0) if found else ""
    return kind, status, db_text(diagnostic or _header(message, "Subject"), 2000)


def _delivery_status(message: Message) -> tuple[str, str, str]:
    """Return (status, action, diagnostic) of the first failed or delayed recipient of a DSN."""
    part = _part(message, "message/delivery-status")
    if part is None:
        return "", "", ""
    blocks = part.get_payload()
    if isinstance(blocks, str):
        blocks = [HeaderParser().parsestr(chunk) for chunk in re.split(r"\r?\n\r?\n", blocks) if chunk.strip()]
    first = ("", "", "")
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        action = _header(block, "Action").lower()
        found = _STATUS.search(_header(block, "Status"))
        status = found.group(0) if found else ""
        diagnostic = " ".join(_header(block, "Diagnostic-Code").split())
        if action in ("failed", "delayed"):
            return status, action, diagnostic
        first = first if first[0] or first[1] else (status, action, diagnostic)
    return first


def _delivery_of(message: Message, raw: bytes, *, complaint: bool) -> tuple[Delivery | None, str]:
    """Find the delivery a report is about: by VERP token, else by the original's Message-ID."""
    places = [value for name in _ENVELOPE_HEADERS for value in _headers(message, name)]
    original = _original(message)
    if complaint:
        places += [_fields(_part(message, "message/feedback-report")).get("original-mail-from", "")]
    if original is not None:  # the envelope sender, as the receiving server recorded it
        places += _headers(original, "Return-Path")
    # One pass over all of them, in this order: the first good token wins (verp_delivery_id
    # checks a bounded number of candidates, however many fake ones the headers hold).
    delivery_id, token_seen = verp_delivery_id("\n".join(places))
    if delivery_id is not None:
        delivery = _delivery(id=delivery_id)
        return (delivery, "VERP token") if delivery else (None, f"a token for delivery {delivery_id} not found")
    if token_seen:
        logger.warning("A returned message carries a VERP token whose signature is wrong (forged or damaged)")
    message_id = _header(original, "Message-ID") if original is not None else ""
    if not message_id:
        found = _MESSAGE_ID.search(raw)
        message_id = f"<{found.group(1).decode('ascii', 'replace')}>" if found else ""
    message_id = db_text(message_id, _MESSAGE_ID_MAX)
    if message_id:
        delivery = _delivery(message_id=message_id)
        if delivery:
            return delivery, "original Message-ID"
    return None, "forged or damaged VERP token" if token_seen else "no VERP token and no known Message-ID"


def _header(message: Message, name: str) -> str:
    """Return a header as clean text, stripped ("" when absent), whatever bytes it holds.

    The email package returns an `email.header.Header`, not a str, for a header with raw
    8-bit bytes; str() of it never raises.
    """
    value = message.get(name)
    return "" if value is None else db_text(str(value)).strip()


def _headers(message: Message, name: str) -> list[str]:
    """Return every header of that name as clean text."""
    return [db_text(str(value)).strip() for value in message.get_all(name, [])]


def _delivery(**lookup) -> Delivery | None:
    return Delivery.objects.select_related("subscription__subscriber").filter(**lookup).first()


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _fields(part: Message | None) -> dict[str, str]:
    """Return the fields of a report part (message/feedback-report), lower-cased names."""
    if part is None:
        return {}
    payload = part.get_payload()
    if isinstance(payload, list):
        return {name.lower(): db_text(str(value)) for block in payload for name, value in block.items()}
    if isinstance(payload, str):
        fields = HeaderParser().parsestr(payload.lstrip()).items()
        return {name.lower(): db_text(str(value)) for name, value in fields}
    return {}


def _original(message: Message) -> Message | None:
    """Return the returned original message (or its headers) inside a report, if any."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822" and part is not message:
            payload = part.get_payload()
            return payload[0] if isinstance(payload, list) and payload else None
        if content_type == "text/rfc822-headers":
            text = part.get_payload(decode=True) or b""
            return HeaderParser().parsestr(text.decode("utf-8", "replace").lstrip())
    return None


def _is_automatic(original: Message) -> bool:
    """Whether the returned original was itself automatic: a report, a bounce or an auto-reply."""
    return (
        original.get_content_type() == "multipart/report"
        or _header(original, "Return-Path") == "<>"
        or bool(_DAEMON.search(_header(original, "From")))
        or (_header(original, "Auto-Submitted") or "no").lower() != "no"
    )


def _is_auto_reply(message: Message) -> bool:
    """Whether a message is an auto-reply (RFC 3834 or the older vacation markers), not a bounce."""
    if _DAEMON.search(_header(message, "From")):
        return False
    auto = (_header(message, "Auto-Submitted") or "no").lower()
    return (
        auto.startswith("auto-replied")
        or "X-Autoreply" in message
        or "X-Autorespond" in message
        or _header(message, "Precedence").lower() == "auto_reply"
        or bool(_AUTO_SUBJECT.match(_header(message, "Subject")))
    )


def _text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if payload:
                return payload.decode("utf-8", "replace")[:20000]
    return ""
