"""DMARC (RFC 9989–9991) of a From domain: one parsable record, a policy, and From aligned with DKIM d= and SPF.

The record is looked up at _dmarc.FROM, then at the organizational domain's. Alignment is
relaxed unless adkim=s / aspf=s: the two domains share their organizational domain. The
organizational domain here is a small built-in rule, not the Public Suffix List: the last
two labels, or three under the two-level public suffixes of TWO_LEVEL_SUFFIXES (co.uk,
com.au, …). A domain under a suffix the table lacks (a city.state.us, a private suffix like
github.io) is judged too loosely; with strict alignment the rule does not matter.

RFC 9989 removed pct, rf and ri: receivers ignore them, so they are reported as obsolete.
"""

import re

from digest.deliverability.findings import Finding, Level, zone_txt
from digest.deliverability.lookup import Dns

TWO_LEVEL_SUFFIXES = frozenset(
    f"{second}.{top}"
    for top, seconds in {
        "uk": "co org me ltd plc net ac gov nhs police sch",
        "au": "com net org edu gov asn id",
        "nz": "co org net ac govt geek school",
        "jp": "co ne or ac go ed",
        "br": "com net org gov edu",
        "za": "co org net gov ac edu",
        "in": "co net org firm gen ind ac edu gov",
        "cn": "com net org gov edu ac",
        "kr": "co ne or ac go re",
        "il": "co org net ac gov muni",
        "mx": "com org net gob edu",
        "tr": "com net org gen biz gov edu",
        "ar": "com org net gob edu",
        "sg": "com net org gov edu",
        "hk": "com net org gov edu",
        "tw": "com net org gov edu idv",
    }.items()
    for second in seconds.split()
)
OBSOLETE_TAGS = ("pct", "rf", "ri")
POLICIES = ("none", "quarantine", "reject")
_VALUES = {
    "p": POLICIES,
    "sp": POLICIES,
    "np": POLICIES,
    "adkim": ("r", "s"),
    "aspf": ("r", "s"),
    "t": ("y", "n"),
    "psd": ("y", "n", "u"),
}
_TAG = re.compile(r"^([a-z][a-z0-9_]*)$", re.IGNORECASE)


class DmarcSyntaxError(ValueError):
    """A DMARC record that does not parse."""


def organizational_domain(domain: str) -> str:
    """The organizational domain by the built-in rule: two labels, three under a known two-level suffix."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in TWO_LEVEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def aligned(one: str, other: str, *, strict: bool) -> bool:
    """Whether two domains align for DMARC: the same name (strict), or the same organizational domain (relaxed)."""
    one, other = one.lower().rstrip("."), other.lower().rstrip(".")
    return one == other if strict else organizational_domain(one) == organizational_domain(other)


def dmarc_parse(record: str) -> dict[str, str]:
    """Read a DMARC record's tags into a dict; DmarcSyntaxError says what does not parse."""
    parts = [part.strip() for part in record.strip().rstrip(";").split(";")]
    tags: dict[str, str] = {}
    for part in parts:
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or not _TAG.match(name):
            raise DmarcSyntaxError(f"{part!r} is not a tag=value pair")
        if name.lower() in tags:
            raise DmarcSyntaxError(f"the tag {name!r} appears twice")
        tags[name.lower()] = value
    if parts[0].replace(" ", "") != "v=DMARC1":
        raise DmarcSyntaxError('the record must begin with "v=DMARC1"')
    for name, allowed in _VALUES.items():
        if name in tags and tags[name].lower() not in allowed:
            raise DmarcSyntaxError(f"{name}={tags[name]} is not one of {', '.join(allowed)}")
    return tags


def _suggested(domain: str, tags: dict[str, str]) -> str:
    kept = {name: value for name, value in tags.items() if name not in OBSOLETE_TAGS and name != "v"}
    kept.setdefault("p", "none")
    kept.setdefault("rua", f"mailto:dmarc-reports@{organizational_domain(domain)}")
    return "; ".join(["v=DMARC1", *(f"{name}={value}" for name, value in kept.items())])


def dmarc_check(dns: Dns, *, from_domain: str, dkim_domain: str, bounce_domain: str) -> list[Finding]:
    """Check the From domain's DMARC record and how DKIM d= and the bounce domain align with From."""
    where = f"_dmarc.{from_domain}"
    records = [text for text in dns.txt(where) if text.lower().startswith("v=dmarc1")]
    organizational = organizational_domain(from_domain)
    if not records and organizational != from_domain:
        where = f"_dmarc.{organizational}"
        records = [text for text in dns.txt(where) if text.lower().startswith("v=dmarc1")]
    if not records:
        return [
            Finding(
                Level.ERROR, "dmarc.missing", from_domain,
                f"{from_domain} has no DMARC record; Gmail, Yahoo and Outlook reject bulk mail without one. "
                "Start with p=none, read the reports, then raise the policy.",
                zone_txt(f"_dmarc.{organizational}", _suggested(from_domain, {})),
            )
        ]  # fmt: skip
    if len(records) > 1:
        return [Finding(Level.ERROR, "dmarc.malformed", from_domain, f"{where} has {len(records)} DMARC records.")]
    try:
        tags = dmarc_parse(records[0])
    except DmarcSyntaxError as error:
        return [
            Finding(
                Level.ERROR, "dmarc.malformed", from_domain, f"{where}: {error}; receivers ignore the record.",
                zone_txt(where, "v=DMARC1; p=none; rua=mailto:dmarc-reports@" + organizational),
            )
        ]  # fmt: skip
    findings = []
    obsolete = [name for name in OBSOLETE_TAGS if name in tags]
    if obsolete:
        findings.append(
            Finding(
                Level.WARNING, "dmarc.obsolete_tags", from_domain,
                f"{where} uses {', '.join(obsolete)}, which RFC 9989 removed; receivers ignore them.",
                zone_txt(where, _suggested(from_domain, tags)),
            )
        )  # fmt: skip
    if dkim_domain and not aligned(from_domain, dkim_domain, strict=tags.get("adkim", "r").lower() == "s"):
        findings.append(
            Finding(
                Level.ERROR, "dmarc.dkim_misaligned", from_domain,
                f"DKIM signs as d={dkim_domain}, which does not align with From {from_domain} "
                f"(adkim={tags.get('adkim', 'r')}): forwarded mail fails DMARC. Sign as the From domain: "
                f"DIGEST_DKIM_DOMAIN={organizational}, and publish the key there.",
                f"DIGEST_DKIM_DOMAIN={organizational}",
            )
        )  # fmt: skip
    if not aligned(from_domain, bounce_domain, strict=tags.get("aspf", "r").lower() == "s"):
        findings.append(
            Finding(
                Level.WARNING, "dmarc.spf_misaligned", from_domain,
                f"The bounce domain {bounce_domain} does not align with From {from_domain} "
                f"(aspf={tags.get('aspf', 'r')}): SPF cannot pass DMARC, only DKIM can.",
                f"DIGEST_BOUNCE_ADDRESS=bounces@{organizational}",
            )
        )  # fmt: skip
    policy = tags.get("p", "none").lower()
    if policy == "none":
        findings.append(
            Finding(
                Level.INFO, "dmarc.policy_none", from_domain,
                f"{where} has p=none: receivers only report. Raise it to quarantine once the reports are clean.",
            )
        )  # fmt: skip
    if not any(finding.level in (Level.ERROR, Level.WARNING) for finding in findings):
        signer = f"DKIM d={dkim_domain} and " if dkim_domain else ""
        findings.append(
            Finding(
                Level.OK, "dmarc.ok", from_domain,
                f"{where}: p={policy}; From aligns with {signer}the bounce domain {bounce_domain}.",
            )
        )  # fmt: skip
    return findings
