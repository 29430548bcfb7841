"""How a claimed batch reaches the relays: build each reader's message and hand it to the pool.

With exactly Django's SMTP backend each message comes from the group's prebuilt MIME
message (digest.rendering.prebuilt); with any other backend from EmailMultiAlternatives. The pool
(digest.sending.pool) sends them over its connections; every outcome goes back to the ledger
(digest.sending.ledger), which records it.

A fault of the group rather than of the reader (its digest cannot be rendered, the
newsletter's From is not an address, the relay refuses our sender or the message's size)
*holds* the group: see digest.sending.ledger.
"""

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from digest.exceptions import RecipientError, RenderError
from digest.models import Delivery, DeliveryStatus, Window
from digest.rendering.content import Personal, RenderedDigest
from digest.rendering.dkim import dkim_signer
from digest.rendering.groups import group_render
from digest.rendering.headers import list_headers
from digest.rendering.message import message_build, personal_for
from digest.rendering.prebuilt import GroupMessage, batch_date
from digest.sending.journal import Journal
from digest.sending.lease import Lease
from digest.sending.outcomes import Outcome
from digest.sending.pacing import Pacing
from digest.sending.pool import Pool, Send
from digest.sending.smtp import FastMessage
from digest.verp import verp_sender
from newsletters.messages import Verbatim
from newsletters.models import SubscriberStatus, SubscriptionStatus
from newsletters.validators import validate_mailbox


@dataclass
class Group:
    """One group's state in a run: its digest, or why it is held; once prepared, what its messages share.

    `digest` is None when no published issue is left in its window (its readers are
    skipped). `held` says why the group cannot go out (it cannot be rendered, its From is
    not an address, a header cannot be written): its readers wait, none is blamed.
    """

    digest: RenderedDigest | None = None
    held: str = ""
    prepared: bool = False
    headers: dict[str, Verbatim] = field(default_factory=dict)  # the list headers, verbatim
    message: GroupMessage | None = None  # the fast path's prebuilt message

    @classmethod
    def rendered(cls, window: Window, *, now: datetime.datetime) -> "Group":
        """Render (or reuse) the group's digest; a RenderError holds the group."""
        try:
            return cls(digest=group_render(window, now=now))
        except RenderError as error:
            return cls(held=str(error))


def groups_prepare(*, deliveries: list[Delivery], groups: dict[Window, Group], pool: Pool) -> None:
    """Check each group's sender headers and build its fast-path message: a batch's database work, done before it is sent.

    While the pool sends, its connection threads and the lease's heartbeat write through the
    run's database connection; the thread that builds messages must not use it then.
    """
    template, fast = pool.relays.template(), pool.relays.fast
    for window in {delivery.window for delivery in deliveries}:
        _group_ready(groups[window], template, fast)


def batch_send(
    *,
    deliveries: list[Delivery],
    groups: dict[Window, Group],
    journal: Journal,
    pool: Pool,
    lease: Lease | None = None,
    pacing: Pacing | None = None,
) -> list[Outcome]:
    """Build a claimed batch's messages and send them over the pool's connections; return every outcome.

    With exactly Django's SMTP backend each message comes from the group's prebuilt MIME
    message (digest.rendering.prebuilt, made once a run); with any other backend, a
    subclass included, from EmailMultiAlternatives through its own send_messages().
    Readers who unsubscribed before the batch was claimed are skipped. With `pacing`, the
    deliveries go in the order and at the pace their mailbox providers allow.
    """
    outcomes: list[Outcome] = []
    template = pool.relays.template()
    fast = pool.relays.fast
    date = batch_date()
    paced = (
        pacing.sequence(deliveries, halted=pool.halted, sending=pool.alive)
        if pacing
        else ((d, None) for d in deliveries)
    )

    def decided(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if pacing is not None:
            pacing.settled(outcome)  # not sent: its provider's slot is free again

    def sendable() -> Iterator[tuple[Delivery, Send]]:
        # A generator: the pool's connections send each message while the next is built.
        for delivery, deferred in paced:
            if deferred is not None:  # its provider keeps throttling: a later run sends it
                outcomes.append(deferred)
                continue
            group = _group_ready(groups[delivery.window], template, fast)
            subscription = delivery.subscription
            if (
                subscription.status != SubscriptionStatus.ACTIVE
                or subscription.subscriber.status != SubscriberStatus.ACTIVE
            ):
                decided(Outcome(delivery, DeliveryStatus.SKIPPED, "unsubscribed before sending"))
            elif group.held:
                decided(Outcome(delivery, DeliveryStatus.DEFERRED, group.held, held=True))
            elif group.digest is None:
                decided(Outcome(delivery, DeliveryStatus.SKIPPED, "no published issue left in the window"))
            else:
                try:
                    personal = personal_for(delivery)
                    send = (
                        _fast_sender(template, group.message, delivery, personal, date)
                        if fast
                        else _django_sender(group.digest, group.headers, delivery, personal)
                    )
                except RecipientError as error:
                    decided(Outcome(delivery, DeliveryStatus.FAILED, f"not sent: {error}", permanent=True))
                    continue
                except OSError as error:
                    # An attached file went missing after rendering: the group's fault, not the reader's.
                    decided(Outcome(delivery, DeliveryStatus.DEFERRED, f"not sent: {error}", held=True))
                    continue
                yield delivery, send

    # pool.send() runs the generator, which adds the outcomes of messages it does not send.
    sent = pool.send(sendable(), journal=journal, expected=len(deliveries), lease=lease, pacing=pacing)
    return outcomes + sent


def _group_ready(group: Group, connection, fast: bool) -> Group:
    """Check a group's sender headers and build its list headers once a run (and its fast-path message).

    The newsletter may have been saved with a bad From before it was validated, or
    DEFAULT_FROM_EMAIL may be wrong: that is the group's fault, so the group is held.
    """
    if group.prepared or group.held or group.digest is None:
        return group
    newsletter = group.digest.newsletter
    from_email = newsletter.sender
    where = "the newsletter's From" if newsletter.from_email else "DEFAULT_FROM_EMAIL"
    try:
        validate_mailbox(from_email)
        if newsletter.reply_to:
            validate_email(newsletter.reply_to)
        group.headers = list_headers(newsletter=newsletter, issue_ids=group.digest.issue_ids)
        if fast:
            group.message = GroupMessage(
                group.digest,
                from_email=from_email,
                envelope_from=_envelope_address(connection, from_email),
                reply_to=newsletter.reply_to,
                headers=group.headers,
                signer=dkim_signer(),
            )
        group.prepared = True
    except ValidationError as error:
        group.held = f"{where} or Reply-To: {' '.join(error.messages)}"
    except (ValueError, OSError) as error:  # a header that cannot go out as it is, a missing attachment
        group.held = f"cannot build the message: {error}"
    return group


def _django_sender(
    rendered: RenderedDigest, headers: dict[str, Verbatim], delivery: Delivery, personal: Personal
) -> Send:
    message = message_build(rendered=rendered, delivery=delivery, headers=headers, personal=personal)
    return lambda backend: backend.send_messages([message]) == 1


def _fast_sender(template, prebuilt: GroupMessage, delivery: Delivery, personal: Personal, date: str) -> Send:
    address = _envelope_address(template, personal.email)
    data = prebuilt.message_bytes(personal, address=address, message_id=delivery.message_id, date=date)
    return FastMessage(verp_sender(delivery.pk) or prebuilt.envelope_from, address, data)


_PLAIN_ADDRESS = re.compile(r"^[A-Za-z0-9._%+\-=']+@[A-Za-z0-9.\-]+$")


def _envelope_address(connection, address: str) -> str:
    """Return the SMTP envelope address; the backend's full parser only for unusual ones."""
    # prep_address parses with the email package (~0.5 ms); stored addresses were
    # validated on the way in, and a plain one needs no IDNA or quoting.
    return address if _PLAIN_ADDRESS.match(address) else connection.prep_address(address)
