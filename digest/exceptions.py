"""One exception root for the digest app; each error carries the ids it concerns."""


class DigestError(Exception):
    """Root of the digest app's errors."""

    def __init__(self, message: str, **ids):
        super().__init__(message)
        self.ids = ids

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({', '.join(f'{k}={v}' for k, v in self.ids.items())})" if self.ids else text


class RenderError(DigestError):
    """A digest could not be rendered (e.g. a subject with a line break)."""


class DeliveryError(DigestError):
    """A digest could not be handed to the mail server."""


class RecipientError(DeliveryError):
    """The reader's own address cannot be used: a permanent failure for that reader only."""


class SigningError(DeliveryError, ValueError):
    """A message could not be DKIM-signed (no header block, no From): a fault of how it was built."""


class SenderDied(DeliveryError):
    """A send task's worker stopped mid-batch: the error its task result shows once another task took over."""
