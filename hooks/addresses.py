"""Which endpoint URLs this server may call: http(s), and only public addresses unless HOOKS_ALLOW_PRIVATE.

An endpoint is typed into an admin form, so without this rule anyone allowed to add one could
make the server post into its own network (SSRF): the database on 127.0.0.1, a cloud's metadata
service on 169.254.169.254, an intranet. A URL is checked when it is saved (a literal address,
`localhost`) and again at every delivery, on the addresses its name resolves to then: a name
that resolved to a public address yesterday may resolve to 127.0.0.1 today. The request then
goes to the address that was checked, never to a second lookup's answer.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from hooks.conf import hooks_settings
from hooks.exceptions import EndpointRefused

SCHEMES = {"http": 80, "https": 443}


def address_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet (not loopback, private, link-local, multicast…)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def url_parts(url: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) of an endpoint URL; raise EndpointRefused for one that cannot be called."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise EndpointRefused(f"{url!r} is not a URL: {error}") from None
    if parts.scheme not in SCHEMES:
        raise EndpointRefused(f"{url!r}: an endpoint URL starts with https:// (or http://)")
    if not parts.hostname:
        raise EndpointRefused(f"{url!r} names no host")
    return parts.scheme, parts.hostname, port or SCHEMES[parts.scheme]


def url_check(url: str) -> None:
    """Refuse, without a DNS lookup, a URL that names a non-public address or localhost."""
    _, host, _ = url_parts(url)
    if hooks_settings.ALLOW_PRIVATE:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise EndpointRefused(f"{url!r} names this machine (set HOOKS_ALLOW_PRIVATE=1 to allow it)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked on what it resolves to, at each delivery
    if not address_public(address):
        raise EndpointRefused(f"{url!r} names a non-public address (set HOOKS_ALLOW_PRIVATE=1 to allow it)")


def validate_endpoint_url(url: str) -> None:
    """Model validator: url_check's refusal as a form error."""
    try:
        url_check(url)
    except EndpointRefused as error:
        raise ValidationError(str(error)) from None


def address_resolve(url: str) -> tuple[str, int]:
    """Return the (address, port) to connect to for a URL; raise EndpointRefused if any address is not public.

    Every address the name resolves to is checked, not only the first: a name may list a public
    and a private one and leave the choice to the resolver's order.
    """
    url_check(url)
    _, host, port = url_parts(url)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise EndpointRefused(f"{host!r} does not resolve: {error}") from None
    addresses = [ipaddress.ip_address(sockaddr[0].split("%")[0]) for *_, sockaddr in found]
    if not hooks_settings.ALLOW_PRIVATE:
        private = [str(address) for address in addresses if not address_public(address)]
        if private:
            raise EndpointRefused(
                f"{host!r} resolves to non-public {', '.join(private)} (set HOOKS_ALLOW_PRIVATE=1 to allow it)"
            )
    return str(addresses[0]), port
