"""How each kind of letter looks: one entry per kind, registered here and nowhere else.

A letter (digest.models.Letter) is a one-off mail to one subscription. Its kind names a
`LetterType`: `render` builds the reader's message (a newsletters.messages.ReaderEmail, so
it is 7-bit and DKIM-signed like every reader mail), `unwanted` says why it should not go
out now ("" when it should). The sender (digest.sending.letters) sets the Message-ID, so a
retry carries the same one. A renderer raises RenderError for a fault of the letter's
text (the letter is held, no reader is blamed), never for the reader.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.core.mail import EmailMessage

from digest.exceptions import RenderError
from digest.models import Letter, LetterKind
from newsletters.invitations import invitation_message, invitation_unwanted
from newsletters.models import SubscriberStatus, SubscriptionStatus


def reader_gone(letter: Letter) -> str:
    """Why a letter to a reader of the newsletter should not go out: they left, paused or bounce."""
    subscription = letter.subscription
    if subscription.subscriber.status != SubscriberStatus.ACTIVE:
        return f"the reader is {subscription.subscriber.status}"
    if subscription.status != SubscriptionStatus.ACTIVE:
        return f"the subscription is {subscription.status}"
    return ""


@dataclass(frozen=True)
class LetterType:
    render: Callable[..., EmailMessage]  # render(letter, *, now) → the message
    unwanted: Callable[[Letter], str] = reader_gone


LETTER_TYPES: dict[str, LetterType] = {}

# An admin import's invitation to confirm (digest.planning.invitations plans them): it goes
# only to a reader still pending, the opposite of the other kinds.
LETTER_TYPES[LetterKind.INVITATION] = LetterType(
    render=lambda letter, *, now: invitation_message(letter.subscription, now=now),
    unwanted=lambda letter: invitation_unwanted(letter.subscription),
)


def letter_render(letter: Letter, *, now: datetime.datetime) -> EmailMessage | str:
    """Return the letter's message, or why it is not to be sent (a str)."""
    kind = LETTER_TYPES.get(letter.kind)
    if kind is None:  # held until a release that knows the kind
        raise RenderError(f"no renderer for letters of kind {letter.kind!r}", letter=letter.pk)
    reason = kind.unwanted(letter)
    if reason:
        return reason
    return kind.render(letter, now=now)
