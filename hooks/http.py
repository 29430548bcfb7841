"""One POST to an endpoint: to the checked address, with a timeout, no redirects, the answer capped.

http.client, not a higher-level client: it follows no redirect (a 3xx is an answer like any
other non-2xx, so a receiver cannot bounce a request into the internal network) and lets the
connection go to the address hooks.addresses checked while TLS still verifies the host name.
"""

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from hooks.addresses import address_resolve, url_parts
from hooks.conf import hooks_settings
from hooks.exceptions import PostFailed


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connect to a fixed address; the Host header keeps the URL's name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connect to a fixed address; TLS verifies the certificate against the URL's name (SNI too)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def endpoint_post(url: str, *, body: bytes, headers: dict[str, str], context: ssl.SSLContext | None = None) -> Answer:
    """POST `body` to `url`; return the answer, or raise EndpointRefused (the URL) or PostFailed (the network)."""
    address, port = address_resolve(url)
    scheme, host, _ = url_parts(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = hooks_settings.TIMEOUT
    if scheme == "https":
        connection = _PinnedHTTPSConnection(
            host, port, address=address, timeout=timeout, context=context or ssl.create_default_context()
        )
    else:
        connection = _PinnedHTTPConnection(host, port, address=address, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.read(hooks_settings.MAX_RESPONSE_BYTES))
    except (OSError, http.client.HTTPException) as error:
        raise PostFailed(f"{type(error).__name__}: {error}") from None
    finally:
        connection.close()
