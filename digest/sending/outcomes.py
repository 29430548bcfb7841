"""The delivery policy in one place: what each SMTP reply, refusal or fault makes of a delivery.

Sent, deferred (retried later with a growing wait), failed (permanent, for this reader),
or held (the digest's own fault, the same for every reader of its group: no reader is
blamed). The twin of digest.returns.policy, which decides what a returned mail does."""

import datetime
import smtplib
from dataclasses import dataclass

from digest.conf import digest_settings
from digest.models import Delivery, DeliveryStatus


@dataclass
class Outcome:
    delivery: Delivery
    status: str
    error: str = ""
    # A 5xx for this recipient: counts towards suppressing the subscriber.
    permanent: bool = False
    # Deferred for a fault of the group (newsletter settings, rendering, our sender): not the reader's.
    held: bool = False
    # Deferred before its message was written (its provider is throttling us): not an attempt,
    # so a long throttle never makes a reader fail; its wait grows with how long it has waited.
    unwritten: bool = False


def backoff(attempts: int) -> datetime.timedelta:
    """Return the wait before retry number `attempts` + 1: doubling, capped."""
    seconds = digest_settings.RETRY_BACKOFF * 2 ** max(attempts - 1, 0)
    return datetime.timedelta(seconds=min(seconds, digest_settings.RETRY_MAX))


def hold_wait(delivery: Delivery, *, now: datetime.datetime) -> datetime.timedelta:
    """Return how long a held delivery waits: as long as it has waited so far, within the retry bounds."""
    waited = now - delivery.created_at
    low = datetime.timedelta(seconds=digest_settings.RETRY_BACKOFF)
    return min(max(waited, low), datetime.timedelta(seconds=digest_settings.RETRY_MAX))


# Replies that mean "slow down", not "this recipient or message is bad": 421 (the relay is
# closing: too busy, try again later), 454 (SES's "Throttling failure"), and 452 when it is
# "too many recipients" (4.5.3); a 452 "mailbox full" is about the recipient.
THROTTLE_CODES = (421, 454)


# 450 and 451 that ask to come back later rather than name a problem of the message: Gmail's
# "4.7.28 ... rate limited", Outlook's "4.7.650 ... temporarily rate limited", Yahoo's "TSS04".
_LATER = ("4.7.", "try again later", "temporarily deferred", "rate limit", "too many", "tss04")


def throttled(code: int, text: str) -> bool:
    """Whether a reply asks us to slow down rather than refusing this recipient or message."""
    lowered = text.lower()
    return (
        code in THROTTLE_CODES
        or (code == 452 and ("4.5.3" in lowered or "too many" in lowered))
        or (code in (450, 451) and any(sign in lowered for sign in _LATER))
    )


def provider_throttled(error: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException) -> bool:
    """Whether a throttling reply is about the recipient's mailbox provider (to RCPT or DATA), not
    about our account at the relay (to MAIL FROM, or 454: Amazon SES's sending quota)."""
    code, text = reply_of(error)
    return throttled(code, text) and code != 454 and not isinstance(error, smtplib.SMTPSenderRefused)


def reply_outcome(delivery: Delivery, error: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException) -> Outcome:
    """The outcome of an error reply: the sender refused or a message too big holds the group;
    5xx is permanent for this recipient; 4xx is worth a retry in a later run."""
    code, text = reply_of(error)
    if isinstance(error, smtplib.SMTPSenderRefused) and code >= 500:
        # MAIL FROM refused: our sender, not this reader; every message of the group would fail.
        return Outcome(
            delivery, DeliveryStatus.DEFERRED, f"the mail server refused the sender {error.sender}: {text}", held=True
        )
    if isinstance(error, smtplib.SMTPDataError) and (code == 552 or text.split(" ")[1:2] == ["5.3.4"]):
        # Too big for the relay: the digest's fault, the same for every reader of the group.
        return Outcome(delivery, DeliveryStatus.DEFERRED, f"message refused: {text}", held=True)
    status = DeliveryStatus.FAILED if code >= 500 else DeliveryStatus.DEFERRED
    return Outcome(delivery, status, text, permanent=code >= 500)


def reply_of(error: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException) -> tuple[int, str]:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(error.recipients.values()), (0, b""))
    else:
        code, text = error.smtp_code, error.smtp_error
    return code, f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"


def none_sent(delivery: Delivery) -> Outcome:
    return Outcome(delivery, DeliveryStatus.DEFERRED, "the mailer reported 0 messages sent")
