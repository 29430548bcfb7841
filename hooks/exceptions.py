"""One exception root for the hooks app: why a request to an endpoint was not made or not answered."""


class HooksError(Exception):
    """Root of the hooks app's errors; the message names the URL or host concerned."""


class EndpointRefused(HooksError, ValueError):
    """An endpoint URL this server will not call: not http(s), or an address inside its own network."""


class PostFailed(HooksError):
    """A request to an endpoint got no answer: refused, timed out, cut off, or not HTTP."""
