"""DNS servers named in a setting: "127.0.0.1:5353", "[::1]:53", "9.9.9.9, 1.1.1.1"."""

import ipaddress

import dns.resolver
from django.core.exceptions import ImproperlyConfigured


def nameservers_parse(value: str, *, setting: str) -> list[tuple[str, int]]:
    """Read a comma-separated list of servers into (address, port) pairs; an error names `setting`."""
    servers = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, port = item, "53"
        if item.startswith("["):
            host, closed, rest = item[1:].partition("]")
            port = (rest.removeprefix(":") or "53") if closed and rest[:1] in ("", ":") else "?"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            servers.append((str(ipaddress.ip_address(host)), int(port)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{setting}: {item!r} is not an IP address with an optional port, e.g. 127.0.0.1:5353."
            ) from None
    return servers


def resolver_for(value: str, *, setting: str, timeout: float) -> dns.resolver.Resolver:
    """A resolver asking the servers a setting names ("": the system's, /etc/resolv.conf), each question
    within `timeout` seconds. Raises dns.resolver.NoResolverConfiguration when "" finds none."""
    servers = nameservers_parse(value, setting=setting)
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [address for address, _ in servers]
        resolver.nameserver_ports = dict(servers)
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = resolver.timeout = timeout
    return resolver
