"""One exception root for the newsletters app: bad input refused before anything changed."""


class NewslettersError(Exception):
    """Root of this app's errors: bad input that was refused before anything changed."""


class ConfirmationReplayed(NewslettersError):
    """A confirmation link that was already used."""


class RateLimited(NewslettersError):
    """Too many confirmation requests from one client."""


class MarkupError(NewslettersError, ValueError):
    """Markdown that would cost too much to render: nested too deep, too many open brackets, too slow."""


class SignupRefused(NewslettersError):
    """A subscribe request the signup firewall turned away; `reason` is a SignupRefusalReason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
