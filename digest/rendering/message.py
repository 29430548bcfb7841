"""One reader's digest as Django's email API builds it (for every mailer but exactly Django's SMTP backend).

The fast path (digest.rendering.prebuilt) builds the same message from a group's prebuilt
bytes; tests/digest/rendering/test_headers.py keeps the two equal in what matters."""

from email.headerregistry import Address

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from digest.exceptions import RecipientError
from digest.models import Delivery
from digest.rendering.content import Personal, RenderedDigest
from digest.rendering.headers import list_unsubscribe
from digest.verp import verp_sender
from newsletters.messages import ReaderEmail, Verbatim
from newsletters.tokens import preferences_url, unsubscribe_token, unsubscribe_url
from newsletters.validators import CONTROL_CHARACTERS, validate_single_line


def message_build(
    *, rendered: RenderedDigest, delivery: Delivery, headers: dict[str, Verbatim], personal: Personal | None = None
) -> ReaderEmail:
    """Build one recipient's message with Django's email API (for mailers other than SMTP), DKIM-signed if configured.

    `headers` are the group's list headers (digest.rendering.headers.list_headers); the email package
    writes them, and this reader's List-Unsubscribe, as they are.
    """
    personal = personal or personal_for(delivery)
    text, html = rendered.personalize(personal)
    newsletter = rendered.newsletter
    from_email = newsletter.sender
    # Verbatim: one line on every path, as the fast path writes it (the email package would
    # fold a long one onto a line of its own).
    message_id = Verbatim("Message-ID", delivery.message_id)
    extra = {"List-Unsubscribe": personal.list_unsubscribe, **headers, "Message-ID": message_id}
    envelope_from = verp_sender(delivery.pk)
    if envelope_from:
        # Django's backends (and anymail's) take the envelope sender from from_email and
        # the From header from headers["From"].
        extra["From"], from_email = from_email, envelope_from
    message = ReaderEmail(
        subject=rendered.subject,
        body=text,
        from_email=from_email,
        to=[str(Address(display_name=personal.name, addr_spec=personal.email))],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=extra,
    )
    message.attach_alternative(html, "text/html")
    for file in rendered.attachments:
        if file.path.name == file.filename:
            message.attach_file(file.path, file.mimetype)
        else:
            message.attach(file.filename, file.path.read_bytes(), file.mimetype)
    return message


def personal_for(delivery: Delivery) -> Personal:
    """Collect a recipient's values. Raises RecipientError for an address that cannot be used.

    A name stored before control characters were refused is cleaned, not held against
    the reader: it is only a greeting and a display name.
    """
    subscription = delivery.subscription
    subscriber = subscription.subscriber
    try:
        validate_single_line(subscriber.email)
        validate_email(subscriber.email)
    except ValidationError:
        raise RecipientError(f"the address {subscriber.email!r} is malformed", delivery=delivery.pk) from None
    name = CONTROL_CHARACTERS.sub(" ", subscriber.name)
    token = unsubscribe_token(subscription.pk)
    unsubscribe = unsubscribe_url(subscription.pk, token=token)
    header = list_unsubscribe(url=unsubscribe, token=token)
    return Personal(
        name, subscriber.email, unsubscribe, preferences_url(subscriber.pk), header, language=delivery.window.language
    )
