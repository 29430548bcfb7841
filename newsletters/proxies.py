"""Which client a request came from, for the rate limits: behind a trusted proxy, from X-Forwarded-For.

Behind nginx every request arrives from 127.0.0.1, so one limit would be shared by every
visitor. NEWSLETTERS_TRUSTED_PROXIES names the proxies (addresses or networks,
comma-separated: `127.0.0.1,::1`, `10.0.0.0/8`) whose X-Forwarded-For is believed. The
client is the rightmost address in that header that is not itself a trusted proxy: each
proxy appends the address it was connected from, and anything to its left was written by
the client, who may write anything.

Only the rate limits use this. A request with X-Forwarded-For from a private address that
is not trusted is noted in the cache, so `manage.py check --deploy` can say so.
"""

import functools
import ipaddress

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from newsletters.conf import newsletters_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNTRUSTED_PROXY_KEY = "newsletters:untrusted-proxy"
_NOTED_FOR = 7 * 24 * 3600


def trusted_proxies() -> tuple[Network, ...]:
    """Return the networks of NEWSLETTERS_TRUSTED_PROXIES; raise ImproperlyConfigured naming a wrong entry."""
    return _networks(newsletters_settings.TRUSTED_PROXIES)


@functools.lru_cache(maxsize=8)
def _networks(value: str) -> tuple[Network, ...]:
    networks = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"NEWSLETTERS_TRUSTED_PROXIES: {entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)."
            ) from None
    return tuple(networks)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().removeprefix("[").split("]")[0])
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(meta: dict) -> str:
    """Return the address of the client a request came from (a request's META), as the rate limits count it."""
    remote = meta.get("REMOTE_ADDR", "")
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded:
        return remote
    networks = trusted_proxies()
    peer = _address(remote)
    if not _trusted(peer, networks):
        if peer is not None and (peer.is_private or peer.is_loopback):
            cache.add(UNTRUSTED_PROXY_KEY, remote, timeout=_NOTED_FOR)  # for check --deploy
        return remote
    client = remote
    for hop in reversed(forwarded.split(",")[-20:]):
        address = _address(hop)
        if address is None:
            break  # a trusted proxy wrote something that is not an address: believe nothing further
        client = str(address)
        if not _trusted(address, networks):
            break
    return client
