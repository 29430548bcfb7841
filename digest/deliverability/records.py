"""The other records a sending domain needs: the DKIM key, MX for returned mail, MTA-STS and TLS-RPT."""

import base64
import binascii

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.deliverability.findings import Finding, Level, zone_txt
from digest.deliverability.lookup import Dns
from digest.rendering.dkim import MIN_KEY_BITS, dns_record

DKIM_MIN_BITS = MIN_KEY_BITS  # what Gmail and Yahoo ask of bulk senders, and all the engine signs with


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def dkim_check(dns: Dns, *, domain: str, selector: str, key: rsa.RSAPrivateKey | None) -> list[Finding]:
    """Check that SELECTOR._domainkey.DOMAIN publishes the public half of the signing key, of 2048 bits or more."""
    if key is None:
        return [
            Finding(
                Level.ERROR, "dkim.off", domain,
                "Digests are not DKIM-signed; Gmail and Yahoo require it of bulk senders. "
                "Run `manage.py dkim_keygen` and set DIGEST_DKIM_DOMAIN, _SELECTOR and _KEY_FILE.",
            )
        ]  # fmt: skip
    name = f"{selector}._domainkey.{domain}"
    wanted = zone_txt(name, dns_record(key))
    records = [text for text in dns.txt(name) if "p=" in text]
    if not records:
        return [Finding(Level.ERROR, "dkim.missing", domain, f"{name} publishes no DKIM key.", wanted)]
    if len(records) > 1:
        return [Finding(Level.ERROR, "dkim.malformed", domain, f"{name} has {len(records)} DKIM records.", wanted)]
    tags = _tags(records[0])
    if tags.get("k", "rsa").lower() != "rsa":
        return [Finding(Level.ERROR, "dkim.malformed", domain, f"{name}: k={tags['k']}, the key is RSA.", wanted)]
    if not tags["p"]:
        return [Finding(Level.ERROR, "dkim.missing", domain, f"{name} has an empty p=: the key is revoked.", wanted)]
    try:
        published = serialization.load_der_public_key(base64.b64decode(tags["p"], validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        return [Finding(Level.ERROR, "dkim.malformed", domain, f"{name}: p= is not an RSA public key.", wanted)]
    # A short published key fails receivers whatever the signing key is: said first, as it needs a new key.
    if isinstance(published, rsa.RSAPublicKey) and published.key_size < DKIM_MIN_BITS:
        return [
            Finding(
                Level.ERROR, "dkim.weak_key", domain,
                f"{name} is a {published.key_size}-bit key; use {DKIM_MIN_BITS} bits: make one with "
                "`manage.py dkim_keygen` under a new selector, publish it, then switch DIGEST_DKIM_SELECTOR.",
            )
        ]  # fmt: skip
    if not isinstance(published, rsa.RSAPublicKey) or published.public_numbers() != key.public_key().public_numbers():
        return [
            Finding(
                Level.ERROR, "dkim.mismatch", domain,
                f"{name} publishes another key than DIGEST_DKIM_KEY_FILE's: every signature fails.", wanted,
            )
        ]  # fmt: skip
    return [Finding(Level.OK, "dkim.ok", domain, f"{name} publishes the signing key ({published.key_size} bits).")]


def mx_check(dns: Dns, *, domain: str) -> list[Finding]:
    """Check that the bounce domain receives mail: returned mail and complaints go there."""
    hosts = dns.mx(domain)
    if not hosts or hosts == [""]:  # "MX 0 ." is RFC 7505's null MX: the domain takes no mail
        return [
            Finding(
                Level.ERROR, "bounce.no_mx", domain,
                f"The bounce domain {domain} has no MX: returned mail and complaints are lost, "
                "and some receivers refuse envelope senders that cannot receive.",
                f"{domain}. IN MX 10 mx.{domain}.",
            )
        ]  # fmt: skip
    return [Finding(Level.OK, "bounce.mx", domain, f"The bounce domain {domain} receives mail at {', '.join(hosts)}.")]


def transport_check(dns: Dns, *, domain: str) -> list[Finding]:
    """Report MTA-STS (RFC 8461) and TLS-RPT (RFC 8460), which are optional: what is there, what could be."""
    kinds = (
        (
            "mta_sts", "MTA-STS", f"_mta-sts.{domain}", "v=STSv1; id=1",
            f"No MTA-STS for {domain} (optional): mail to it may be sent without TLS. To require TLS, serve "
            f"a policy at https://mta-sts.{domain}/.well-known/mta-sts.txt and publish this record.",
        ),
        (
            "tls_rpt", "TLS-RPT", f"_smtp._tls.{domain}", f"v=TLSRPTv1; rua=mailto:tls-reports@{domain}",
            f"No TLS-RPT for {domain} (optional): nobody reports TLS failures of mail to it.",
        ),
    )  # fmt: skip
    findings = []
    for code, title, name, suggested, absent in kinds:
        version = suggested.partition(";")[0].lower()
        present = [text for text in dns.txt(name) if text.lower().startswith(version)]
        if present:
            findings.append(Finding(Level.OK, f"{code}.present", domain, f"{title}: {present[0]}."))
        else:
            findings.append(Finding(Level.INFO, f"{code}.absent", domain, absent, zone_txt(name, suggested)))
    return findings
