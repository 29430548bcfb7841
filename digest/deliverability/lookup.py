"""DNS look-ups for the deliverability check, through dnspython and the resolver DIGEST_DNS_RESOLVER names.

An answer that says the name or the record does not exist is an empty list: the check
reports what is missing. A resolver that does not answer (timeout, SERVFAIL) raises
DnsFailure, so a broken resolver is never mistaken for a missing record.
"""

import dns.exception
import dns.name
import dns.resolver
from django.core.exceptions import ImproperlyConfigured

from digest.conf import digest_settings
from digest.exceptions import DigestError
from project.nameservers import resolver_for


class DnsFailure(DigestError):
    """The resolver gave no usable answer for a name (timeout, SERVFAIL, a bad name)."""

    def __init__(self, name: str, rdtype: str, reason: str):
        super().__init__(f"{rdtype} {name}: {reason}")
        self.name, self.rdtype = name, rdtype


class Dns:
    """Answers of one resolver, each name and type asked once (a check asks the same names many times)."""

    def __init__(self, resolver: dns.resolver.Resolver):
        self.resolver = resolver
        self._answers: dict[tuple[str, str], list] = {}
        # After one timeout or SERVFAIL every further question fails at once: a resolver that is
        # down would otherwise cost DIGEST_DNS_TIMEOUT per name, dozens of times.
        self._failure: DnsFailure | None = None

    @classmethod
    def from_settings(cls) -> "Dns":
        """The resolver of DIGEST_DNS_RESOLVER ("": the system's), with DIGEST_DNS_TIMEOUT per look-up."""
        try:
            resolver = resolver_for(
                digest_settings.DNS_RESOLVER, setting="DIGEST_DNS_RESOLVER", timeout=digest_settings.DNS_TIMEOUT
            )
        except dns.resolver.NoResolverConfiguration:
            raise ImproperlyConfigured(
                "DIGEST_DNS_RESOLVER: this machine has no resolver configured; name one, e.g. 127.0.0.1:53."
            ) from None
        return cls(resolver)

    def _ask(self, name: str, rdtype: str) -> list:
        key = (name.lower().rstrip("."), rdtype)
        if self._failure is not None:
            raise DnsFailure(key[0], rdtype, f"not asked, the resolver failed before ({self._failure})")
        if key not in self._answers:
            try:
                answer = self.resolver.resolve(dns.name.from_text(key[0]), rdtype, search=False)
                self._answers[key] = list(answer)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                self._answers[key] = []
            except dns.exception.Timeout:
                self._failure = DnsFailure(key[0], rdtype, "the resolver did not answer in time")
                raise self._failure from None
            except dns.resolver.NoNameservers:
                self._failure = DnsFailure(key[0], rdtype, "the resolver failed (SERVFAIL or refused)")
                raise self._failure from None
            except (dns.name.LabelTooLong, dns.name.EmptyLabel, dns.name.NameTooLong) as error:
                raise DnsFailure(key[0], rdtype, f"not a domain name ({error})") from None
        return self._answers[key]

    def txt(self, name: str) -> list[str]:
        """The TXT records at a name, each one's strings joined (RFC 7208, 3.3)."""
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in self._ask(name, "TXT")]

    def addresses(self, name: str) -> list[str]:
        """The IPv4 and IPv6 addresses of a name."""
        return [rdata.address for rdtype in ("A", "AAAA") for rdata in self._ask(name, rdtype)]

    def mx(self, name: str) -> list[str]:
        """The mail exchangers of a name, most preferred first."""
        records = sorted(self._ask(name, "MX"), key=lambda rdata: rdata.preference)
        return [rdata.exchange.to_text(omit_final_dot=True) for rdata in records]
