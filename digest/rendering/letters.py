"""How each kind of letter looks: one entry per kind, registered here and nowhere else.

A letter (digest.models.Letter) is a one-off mail to one subscription. Its kind names a
`LetterType`: `render` builds the reader's message (a newsletters.messages.ReaderEmail, so
it is 7-bit and DKIM-signed like every reader mail) or says why there is none, `unwanted`
says why it should not go out now ("" when it should). The sender (digest.sending.letters) sets the Message-ID, so a
retry carries the same one. A renderer raises RenderError for a fault of the letter's
text (the letter is held, no reader is blamed), never for the reader.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.core.mail import EmailMessage

from digest.conf import digest_settings
from digest.exceptions import RenderError
from digest.models import Letter, LetterKind
from newsletters.exceptions import MarkupError
from newsletters.invitations import invitation_message, invitation_unwanted
from newsletters.models import OnboardingStep, SubscriberStatus, SubscriptionStatus
from newsletters.onboarding import onboarding_message, reconfirm_message


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
    render: Callable[..., EmailMessage | str]  # render(letter, *, now) → the message, or why it is not sent
    unwanted: Callable[[Letter], str] = reader_gone


def onboarding_render(letter: Letter, *, now: datetime.datetime) -> EmailMessage | str:
    """An onboarding step's mail (newsletters.onboarding), or why not: the step was deleted since it was planned."""
    step = OnboardingStep.objects.select_related("issue").filter(pk=letter.step).first()
    if step is None:
        return "the onboarding step was deleted"
    try:
        return onboarding_message(subscription=letter.subscription, step=step, now=now)
    except MarkupError as error:
        raise RenderError(f"onboarding step {step.position}: {error}", letter=letter.pk) from error


def reconfirm_render(letter: Letter, *, now: datetime.datetime) -> EmailMessage | str:
    """The "still want this?" mail, with the day silence pauses the subscription."""
    last_link = letter.subscription.subscriber.last_link_at
    if last_link is not None and last_link >= letter.due_at:
        return "the reader used a link since it was planned"
    pause_at = now + datetime.timedelta(days=digest_settings.RECONFIRM_DAYS)
    return reconfirm_message(subscription=letter.subscription, pause_at=pause_at)


LETTER_TYPES: dict[str, LetterType] = {
    LetterKind.ONBOARDING: LetterType(render=onboarding_render),
    LetterKind.RECONFIRM: LetterType(render=reconfirm_render),
}

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
    return kind.unwanted(letter) or kind.render(letter, now=now)
