"""The deliverability check: per From domain of the newsletters, every DNS record receivers judge digests by.

Inputs come from the settings: each newsletter's From (else DEFAULT_FROM_EMAIL), the
digest MAILERS' SMTP hosts (the relay SPF must cover), DIGEST_DKIM_* (the key and where it
is published) and DIGEST_BOUNCE_ADDRESS (the envelope domain, which SPF and MX are checked
on; without it the envelope sender is the From address). Nothing is sent and nothing written.
"""

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from email.utils import parseaddr

from django.conf import settings

from digest.conf import digest_settings
from digest.deliverability.dmarc import dmarc_check
from digest.deliverability.findings import Finding, Level
from digest.deliverability.lookup import Dns, DnsFailure
from digest.deliverability.oneclick import one_click_check
from digest.deliverability.records import dkim_check, mx_check, transport_check
from digest.deliverability.spf import spf_check
from digest.rendering.dkim import dkim_signer
from newsletters.models import Newsletter, sender_of

# Addresses the world never sees mail from: a relay there relays on, from an address not known here.
_INTERNAL = [ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]


@dataclass(frozen=True)
class Section:
    title: str
    findings: list[Finding]


@dataclass
class Report:
    sections: list[Section] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [finding for section in self.sections for finding in section.findings]

    def counts(self) -> dict[str, int]:
        """How many findings of each level, every level named."""
        counted = Counter(finding.level for finding in self.findings)
        return {level.value: counted[level] for level in Level}

    @property
    def failed(self) -> bool:
        return any(finding.level == Level.ERROR for finding in self.findings)


def domain_of(address: str) -> str:
    """The domain of an address or mailbox ("Name <a@b.example>"), lowercased."""
    return parseaddr(address)[1].rpartition("@")[2].lower().rstrip(".")


def from_domains() -> dict[str, list[str]]:
    """The From domains digests are sent from, each with the newsletters that use it."""
    domains: dict[str, list[str]] = {}
    for name, from_email in Newsletter.objects.order_by("name").values_list("name", "from_email"):
        domains.setdefault(domain_of(sender_of(from_email)), []).append(name)
    return domains or {domain_of(settings.DEFAULT_FROM_EMAIL): []}


def relay_hosts() -> list[str]:
    """The SMTP hosts of the MAILERS digests go through (an ESP's HTTP API has none)."""
    hosts = []
    for alias in digest_settings.mailer_aliases:
        host = settings.MAILERS.get(alias, {}).get("OPTIONS", {}).get("host")
        if host and host not in hosts:
            hosts.append(host)
    return hosts


def relays_resolve(dns: Dns, hosts: list[str]) -> tuple[dict[str, list[str]], list[Finding]]:
    """The public addresses of each relay host, and what could not be resolved or checked."""
    relays, findings = {}, []
    if not hosts:
        findings.append(
            Finding(
                Level.INFO, "relay.none", "", "Digests go through no SMTP relay here: SPF is not checked against one."
            )
        )
    for host in hosts:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = dns.addresses(host)
        if not addresses:
            findings.append(Finding(Level.ERROR, "relay.unresolved", host, f"The relay {host} has no address in DNS."))
            continue
        internal = [a for a in addresses if _internal(ipaddress.ip_address(a))]
        if internal:
            findings.append(
                Finding(
                    Level.INFO, "relay.internal", host,
                    f"The relay {host} is at {', '.join(internal)}, an internal address: SPF must cover the address "
                    "it sends to the world from, which is not known here.",
                )
            )  # fmt: skip
        if public := [a for a in addresses if a not in internal]:
            relays[host] = public
            findings.append(Finding(Level.OK, "relay.resolved", host, f"The relay {host} is at {', '.join(public)}."))
    return relays, findings


def _internal(ip) -> bool:
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or any(ip in net for net in _INTERNAL)


def _guarded(where: str, check, /, *args, **kwargs) -> list[Finding]:
    """Run one check of a domain; a resolver failure becomes an error finding instead of ending the report."""
    try:
        return check(*args, **kwargs)
    except DnsFailure as error:
        return [Finding(Level.ERROR, "dns.failure", where, f"DNS: {error}; this could not be checked.")]


def deliverability_check(
    *, dns: Dns | None = None, domains: dict[str, list[str]] | None = None, one_click: bool = False
) -> Report:
    """Check every From domain's SPF, DKIM, DMARC, bounce MX, MTA-STS and TLS-RPT; return the findings.

    With one_click, also POST to SITE_URL's one-click endpoint as mail providers do (HTTPS).
    """
    dns = dns or Dns.from_settings()
    domains = from_domains() if domains is None else domains
    signer = dkim_signer()
    dkim_domain = signer.domain if signer else ""
    try:
        relays, relay_findings = relays_resolve(dns, relay_hosts())
    except DnsFailure as error:
        relays, relay_findings = {}, [Finding(Level.ERROR, "dns.failure", "", f"DNS: {error}; the relay is unknown.")]
    report = Report([Section("Relay", relay_findings)])
    if signer:
        findings = _guarded(dkim_domain, dkim_check, dns, domain=dkim_domain, selector=signer.selector, key=signer.key)
        report.sections.append(Section(f"DKIM key (d={signer.domain}, s={signer.selector})", findings))
    for from_domain, names in domains.items():
        bounce_domain = domain_of(digest_settings.BOUNCE_ADDRESS) if digest_settings.BOUNCE_ADDRESS else from_domain
        findings = [] if signer else dkim_check(dns, domain=from_domain, selector="", key=None)
        findings += _guarded(bounce_domain, spf_check, dns, bounce_domain, relays)
        findings += _guarded(bounce_domain, mx_check, dns, domain=bounce_domain)
        findings += _guarded(
            from_domain, dmarc_check, dns, from_domain=from_domain, dkim_domain=dkim_domain, bounce_domain=bounce_domain
        )
        findings += _guarded(from_domain, transport_check, dns, domain=from_domain)
        used_by = f" ({', '.join(names)})" if names else ""
        report.sections.append(Section(f"From {from_domain}{used_by}, bounces to {bounce_domain}", findings))
    if one_click:
        report.sections.append(Section(f"One-click unsubscribe ({settings.SITE_URL})", one_click_check()))
    return report
