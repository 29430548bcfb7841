"""One exception root for the hooks app; each error carries the ids it concerns."""


class HooksError(Exception):
    """Root of the hooks app's errors."""

    def __init__(self, message: str, **ids):
        super().__init__(message)
        self.ids = ids

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({', '.join(f'{k}={v}' for k, v in self.ids.items())})" if self.ids else text


class EndpointRefused(HooksError, ValueError):
    """An endpoint URL this server will not call: not http(s), or an address inside its own network."""


class PostFailed(HooksError):
    """A request to an endpoint got no answer: refused, timed out, cut off, or not HTTP."""
