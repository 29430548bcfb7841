"""SPF (RFC 7208) of the envelope sender's domain: one record, that lets the relay send, in at most 10 look-ups.

Receivers check SPF against the envelope sender (the bounce address), not against From, so
this is run on the bounce domain. A relay is covered when evaluating the record for each of
its addresses gives "pass" (ip4, ip6, a, mx, include and redirect are evaluated; terms with
macros, ptr and exists cannot be without a real message, and never match here). The
look-up count is the record's worst case: every include, a, mx, ptr, exists and redirect,
through all includes, must stay at 10 or fewer (RFC 7208, 4.6.4), or receivers answer
permerror whichever address sent.
"""

import ipaddress
import re
from dataclasses import dataclass

from digest.deliverability.findings import Finding, Level, zone_txt
from digest.deliverability.lookup import Dns

LOOKUP_LIMIT = 10
_LOOKUP_TERMS = {"include", "a", "mx", "ptr", "exists", "redirect"}
_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_VERSION = re.compile(r"^v=spf1(?:\s|$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_MECHANISM = re.compile(r"^([+?~-]?)([a-z0-9]+)(?::([^/]+))?(?:/(\d+))?(?://(\d+))?$", re.IGNORECASE)
_RESULTS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
# Relays of the larger ESPs (host suffix) and the include their customers publish.
ESP_INCLUDES = {
    ".sendgrid.net": "sendgrid.net",
    ".amazonaws.com": "amazonses.com",
    ".mailgun.org": "mailgun.org",
    ".postmarkapp.com": "spf.mtasv.net",
    ".brevo.com": "spf.brevo.com",
    ".sparkpostmail.com": "sparkpostmail.com",
    ".mailjet.com": "spf.mailjet.com",
    ".gmail.com": "_spf.google.com",
    ".office365.com": "spf.protection.outlook.com",
}


class SpfSyntaxError(ValueError):
    """A record term that is not SPF."""


@dataclass(frozen=True)
class Term:
    qualifier: str
    name: str  # a mechanism ("ip4", "include", …) or a modifier ("redirect", "exp", …)
    value: str
    cidr4: int | None = None
    cidr6: int | None = None
    modifier: bool = False


def spf_parse(record: str) -> list[Term]:
    """Split a v=spf1 record into its terms; SpfSyntaxError names the first one that is not SPF."""
    terms = []
    for word in record.split()[1:]:
        modifier = _MODIFIER.match(word)
        if modifier and ":" not in modifier.group(1):
            terms.append(Term("", modifier.group(1).lower(), modifier.group(2), modifier=True))
            continue
        match = _MECHANISM.match(word)
        if not match or match.group(2).lower() not in _MECHANISMS:
            raise SpfSyntaxError(f"{word!r} is not an SPF mechanism")
        qualifier, name, value, cidr4, cidr6 = match.groups()
        name = name.lower()
        if name in {"ip4", "ip6"}:
            try:
                network = ipaddress.ip_network(f"{value}/{cidr4}" if cidr4 else value or "", strict=False)
            except ValueError:
                raise SpfSyntaxError(f"{word!r}: not an IP network") from None
            if network.version != int(name[-1]):
                raise SpfSyntaxError(f"{word!r}: not an IPv{name[-1]} network")
            value = str(network)
        elif name in {"include", "exists"} and not value:
            raise SpfSyntaxError(f"{word!r} needs a domain")
        terms.append(Term(qualifier or "+", name, value or "", cidr4 and int(cidr4), cidr6 and int(cidr6)))
    return terms


def spf_records(dns: Dns, domain: str) -> list[str]:
    """The TXT records at a domain that are SPF records."""
    return [text for text in dns.txt(domain) if _VERSION.match(text)]


class _Evaluation:
    """check_host() of RFC 7208 for one address, limited to what a check without a message can decide."""

    def __init__(self, dns: Dns):
        self.dns = dns

    def result(self, ip, domain: str, depth: int = 0) -> str:
        records = spf_records(self.dns, domain)
        if len(records) != 1 or depth > LOOKUP_LIMIT:
            return "none" if not records else "permerror"
        try:
            terms = spf_parse(records[0])
        except SpfSyntaxError:
            return "permerror"
        for term in terms:
            if not term.modifier and self._matches(term, ip, domain, depth):
                return _RESULTS[term.qualifier]
        redirect = next((term.value for term in terms if term.name == "redirect"), None)
        return self.result(ip, redirect, depth + 1) if redirect and "%" not in redirect else "neutral"

    def _matches(self, term: Term, ip, domain: str, depth: int) -> bool:
        target = term.value or domain
        if "%" in target:
            return False
        if term.name == "all":
            return True
        if term.name in {"ip4", "ip6"}:
            return ip in ipaddress.ip_network(term.value)
        if term.name == "include":
            return self.result(ip, target, depth + 1) == "pass"
        if term.name == "a":
            return self._within(ip, self.dns.addresses(target), term)
        if term.name == "mx":
            return any(self._within(ip, self.dns.addresses(host), term) for host in self.dns.mx(target)[:10])
        return False  # ptr and exists depend on the real connection

    @staticmethod
    def _within(ip, addresses: list[str], term: Term) -> bool:
        prefix = (term.cidr4 if ip.version == 4 else term.cidr6) or ip.max_prefixlen
        same = [address for address in addresses if ipaddress.ip_address(address).version == ip.version]
        return any(ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False) for address in same)


def spf_lookups(dns: Dns, domain: str, seen: frozenset = frozenset()) -> tuple[int, list[str]]:
    """Count the DNS look-ups a record costs at most, through its includes; also name the includes that are broken."""
    records = spf_records(dns, domain)
    if len(records) != 1:
        return 0, [f"{domain} has {len(records)} SPF records"] if seen else []
    try:
        terms = spf_parse(records[0])
    except SpfSyntaxError as error:
        return 0, [f"{domain}: {error}"]
    count, broken = 0, []
    for term in terms:
        if term.name not in _LOOKUP_TERMS:
            continue
        count += 1
        if term.name in {"include", "redirect"} and "%" not in term.value:
            if term.value in seen or len(seen) > LOOKUP_LIMIT:
                broken.append(f"{term.value} includes itself")
                continue
            more, problems = spf_lookups(dns, term.value, seen | {domain})
            count, broken = count + more, broken + problems
    return count, broken


def _with_terms(record: str, added: list[str]) -> str:
    """The record with terms added before its "all" (or its redirect), where they are evaluated."""
    words = record.split()
    ends = (i for i, word in enumerate(words) if i and (word.lstrip("+-~?").lower() == "all" or "=" in word))
    at = next(ends, len(words))
    return " ".join([*words[:at], *[term for term in added if term not in words], *words[at:]])


def relay_terms(host: str, addresses: list[str]) -> list[str]:
    """The SPF terms that let a relay send: its ESP's include, else its addresses."""
    for suffix, include in ESP_INCLUDES.items():
        if f".{host.lower()}".endswith(suffix):
            return [f"include:{include}"]
    return [f"ip{ipaddress.ip_address(address).version}:{address}" for address in addresses]


def spf_check(dns: Dns, domain: str, relays: dict[str, list[str]]) -> list[Finding]:
    """Check the SPF of the envelope domain against the relays (host → public addresses)."""
    records = spf_records(dns, domain)
    wanted = [term for host, addresses in relays.items() for term in relay_terms(host, addresses)]
    if not records:
        record = " ".join(["v=spf1", *wanted, "-all"])
        return [
            Finding(Level.ERROR, "spf.missing", domain, f"{domain} publishes no SPF record.", zone_txt(domain, record))
        ]
    if len(records) > 1:
        merged = " ".join(
            dict.fromkeys(["v=spf1", *(w for r in records for w in r.split()[1:] if w.lstrip("+-~?").lower() != "all")])
        )
        return [
            Finding(
                Level.ERROR, "spf.multiple", domain,
                f"{domain} publishes {len(records)} SPF records; receivers answer permerror. Publish one.",
                zone_txt(domain, f"{merged} -all"),
            )
        ]  # fmt: skip
    try:
        spf_parse(records[0])
    except SpfSyntaxError as error:
        return [Finding(Level.ERROR, "spf.malformed", domain, f"SPF of {domain}: {error}.")]
    findings = []
    lookups, broken = spf_lookups(dns, domain)
    for problem in broken:
        findings.append(Finding(Level.ERROR, "spf.include_broken", domain, f"SPF of {domain}: {problem}."))
    if lookups > LOOKUP_LIMIT:
        findings.append(
            Finding(
                Level.ERROR, "spf.too_many_lookups", domain,
                f"SPF of {domain} needs {lookups} DNS look-ups, more than {LOOKUP_LIMIT}: receivers answer permerror. "
                "Replace a, mx and nested includes by ip4:/ip6: terms.",
            )
        )  # fmt: skip
    evaluation = _Evaluation(dns)
    missing = []
    for host, addresses in relays.items():
        for address in addresses:
            result = evaluation.result(ipaddress.ip_address(address), domain)
            if result != "pass":
                missing.append(f"{host} ({address}) gets {result}")
    if missing:
        findings.append(
            Finding(
                Level.ERROR, "spf.relay_not_covered", domain,
                f"SPF of {domain} does not let the relay send: {'; '.join(missing)}. Add {' '.join(wanted)}.",
                zone_txt(domain, _with_terms(records[0], wanted)),
            )
        )  # fmt: skip
    if not findings:
        covered = "lets the relay send" if relays else "parses (no relay address to check it against)"
        findings.append(Finding(Level.OK, "spf.ok", domain, f"SPF of {domain} {covered}; {lookups} look-ups."))
    return findings
