"""The signup firewall: what a subscribe request must pass before a confirmation mail goes out.

In order, cheapest first (docs/operating/signup-protection.md):
1. The honeypot: a field people never see; a request that fills it is answered as if it
   succeeded and nothing is sent (a bot learns nothing).
2. The proof-of-work challenge (ALTCHA, self-hosted): required while NEWSLETTERS_CHALLENGE is
   "always", or under "auto" for a while after a burst of requests. A solution works once.
3. Limits per client IP (services.subscription_request), per /24 (IPv4) or /48 (IPv6)
   network, and per recipient domain.
4. The address's domain: not on the disposable-domain list (the `disposable-email-domains`
   package), and with an MX or an A/AAAA record (null MX, RFC 7505, counts as none). A
   resolver that does not answer lets the request through: the confirmation mail decides.

Every refusal is counted per day and reason (SignupRefusal), for the admin.
"""

import base64
import datetime
import hashlib
import ipaddress
import json
import logging

import dns.exception
import dns.name
import dns.resolver
from altcha import create_challenge_v1, verify_solution_v1
from disposable_email_domains import blocklist
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F
from django.utils.translation import gettext

from newsletters.conf import newsletters_settings
from newsletters.exceptions import RateLimited, SignupRefused
from newsletters.models import SignupRefusal, SignupRefusalReason
from newsletters.services import rate_hit, subscription_request
from project.nameservers import resolver_for

logger = logging.getLogger(__name__)

HONEYPOT_FIELD = "website"
CHALLENGE_FIELD = "altcha"
_BURST_KEY = "signup:burst"
_CHALLENGE_ON_KEY = "signup:challenge-on"
_CHALLENGE_TTL = datetime.timedelta(minutes=10)
_DNS_LIFETIME = 3.0  # seconds: a person is waiting for the page
_DOMAIN_ANSWER_TTL = 3600


def refusal_count(*, reason: str, now: datetime.datetime) -> None:
    """Count one refused request under its reason, on today's row."""
    day = now.date()
    if not SignupRefusal.objects.filter(day=day, reason=reason).update(count=F("count") + 1):
        _, created = SignupRefusal.objects.get_or_create(day=day, reason=reason, defaults={"count": 1})
        if not created:
            SignupRefusal.objects.filter(day=day, reason=reason).update(count=F("count") + 1)


def _refuse(reason: str, message: str, *, now: datetime.datetime):
    refusal_count(reason=reason, now=now)
    return SignupRefused(reason, message)


# ------------------------------------------------------------------------ challenge


def _hmac_key() -> str:
    return hashlib.sha256(f"newsletters.altcha:{settings.SECRET_KEY}".encode()).hexdigest()


def challenge_required() -> bool:
    """Whether subscribe requests must carry a solved challenge now (setting, or a recent burst)."""
    mode = newsletters_settings.CHALLENGE
    if mode not in ("auto", "always", "never"):
        raise ImproperlyConfigured(f'NEWSLETTERS_CHALLENGE must be "auto", "always" or "never", not {mode!r}.')
    if mode != "auto":
        return mode == "always"
    return cache.get(_CHALLENGE_ON_KEY) is not None


def burst_note() -> None:
    """Count one subscribe request site-wide; past the burst limit, turn the challenge on for a while."""
    window = newsletters_settings.CHALLENGE_WINDOW
    cache.add(_BURST_KEY, 0, timeout=window)
    try:
        seen = cache.incr(_BURST_KEY)
    except ValueError:  # expired between add and incr
        cache.set(_BURST_KEY, 1, timeout=window)
        seen = 1
    if seen > newsletters_settings.CHALLENGE_BURST:
        if cache.add(_CHALLENGE_ON_KEY, True, timeout=newsletters_settings.CHALLENGE_HOLD):
            logger.warning("More than %s subscribe requests in %s s: the challenge is on.", seen - 1, window)


def challenge_make(*, now: datetime.datetime) -> dict:
    """Return a new ALTCHA challenge (the widget's JSON): signed with the site's key, valid ten minutes."""
    challenge = create_challenge_v1(
        hmac_key=_hmac_key(),
        max_number=newsletters_settings.CHALLENGE_MAX_NUMBER,
        expires=now + _CHALLENGE_TTL,
    )
    return {
        "algorithm": challenge.algorithm,
        "challenge": challenge.challenge,
        "maxnumber": challenge.max_number,
        "salt": challenge.salt,
        "signature": challenge.signature,
    }


def _challenge_passed(payload: str) -> bool:
    """Whether `payload` (the widget's base64 JSON) solves a challenge of ours not used before."""
    if not payload or len(payload) > 2000:
        return False
    try:
        solution = json.loads(base64.b64decode(payload, validate=True))
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors; so is bad UTF-8
        return False
    # The library trusts the shape it is given: check it first, so hostile JSON is a refusal, not a 500.
    if not (
        isinstance(solution, dict)
        and all(isinstance(solution.get(key), str) for key in ("algorithm", "challenge", "salt", "signature"))
        and isinstance(solution.get("number"), int)
        and not isinstance(solution.get("number"), bool)
    ):
        return False
    ok, _error = verify_solution_v1(solution, _hmac_key(), check_expires=True)
    # One solution, one request: a bot that solved once cannot post it a thousand times.
    return ok and cache.add(
        f"signup:altcha-used:{solution['signature']}", True, timeout=int(_CHALLENGE_TTL.total_seconds()) + 60
    )


# --------------------------------------------------------------------------- limits


def client_network(client: str) -> str:
    """Return the /24 (IPv4) or /48 (IPv6) network of a client address, as the network limit counts it."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# --------------------------------------------------------------------------- domains


def domain_disposable(domain: str) -> bool:
    """Whether a domain, or a domain it is under, is on the disposable-address list."""
    labels = domain.lower().rstrip(".").split(".")
    return any(".".join(labels[i:]) in blocklist for i in range(len(labels) - 1))


def _resolver() -> dns.resolver.Resolver:
    return resolver_for(newsletters_settings.DNS_RESOLVER, setting="NEWSLETTERS_DNS_RESOLVER", timeout=_DNS_LIFETIME)


def domain_receives_mail(domain: str) -> bool:
    """Whether a domain has an MX record other than a null MX, or else an A or AAAA record.

    A resolver that fails or does not answer counts as yes: the confirmation mail decides.
    Answers are kept in the cache for an hour.
    """
    domain = domain.lower().rstrip(".")
    key = "signup:domain:" + hashlib.sha256(domain.encode()).hexdigest()
    known = cache.get(key)
    if known is not None:
        return known
    try:
        answer = _domain_lookup(_resolver(), domain)
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration) as error:
        logger.warning("Cannot tell whether %s receives mail (%s); accepting the request.", domain, error)
        return True
    cache.set(key, answer, timeout=_DOMAIN_ANSWER_TTL)
    return answer


def _domain_lookup(resolver: dns.resolver.Resolver, domain: str) -> bool:
    name = dns.name.from_text(domain)
    try:
        exchanges = [str(record.exchange) for record in resolver.resolve(name, "MX", search=False)]
        # RFC 7505: a single MX of "." says the domain accepts no mail.
        return exchanges != ["."]
    except dns.resolver.NXDOMAIN:
        return False
    except dns.resolver.NoAnswer:
        pass
    for rdtype in ("A", "AAAA"):
        try:
            if resolver.resolve(name, rdtype, search=False):
                return True
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
    return False


def _mail_domain_check() -> bool:
    value = newsletters_settings.MAIL_DOMAIN_CHECK
    if value not in ("on", "off"):
        raise ImproperlyConfigured(f'NEWSLETTERS_MAIL_DOMAIN_CHECK must be "on" or "off", not {value!r}.')
    return value == "on"


# ---------------------------------------------------------------------------- gate


def signup_submit(
    *,
    email: str,
    name: str,
    tz: str,
    choices: dict[int, str],
    data,
    client: str,
    now: datetime.datetime,
    language: str = "",
) -> bool:
    """Screen a subscribe request, then mail its confirmation link; return whether a mail went out.

    Raises SignupRefused (counted) or RateLimited (counted too, as "client").
    """
    signup_screen(email=email, data=data, client=client, now=now)
    try:
        return subscription_request(
            email=email, name=name, tz=tz, choices=choices, client=client, now=now, language=language
        )
    except RateLimited:
        refusal_count(reason=SignupRefusalReason.CLIENT, now=now)
        raise


def signup_screen(*, email: str, data, client: str, now: datetime.datetime) -> None:
    """Pass a subscribe request through the firewall; raise SignupRefused with the reason.

    `data` is the posted form (honeypot and challenge fields). The per-client limit and the
    per-address limit stay in services.subscription_request.
    """
    burst_note()
    if data.get(HONEYPOT_FIELD):
        raise _refuse(SignupRefusalReason.HONEYPOT, gettext("Thanks."), now=now)
    if challenge_required() and not _challenge_passed(data.get(CHALLENGE_FIELD, "")):
        raise _refuse(
            SignupRefusalReason.CHALLENGE,
            gettext(
                "Many sign-ups are arriving: your browser needs a second to show it is not a robot, then send the form again."
            ),
            now=now,
        )
    if not rate_hit(
        f"subscribe:network:{client_network(client)}",
        limit=newsletters_settings.RATE_PER_NETWORK,
        period=newsletters_settings.RATE_PERIOD,
    ):
        raise _refuse(
            SignupRefusalReason.NETWORK, gettext("Too many requests from your network; try again later."), now=now
        )
    domain = email.rpartition("@")[2].lower()
    if domain_disposable(domain):
        raise _refuse(
            SignupRefusalReason.DISPOSABLE,
            gettext("Addresses at this domain are disposable; use one you keep."),
            now=now,
        )
    if _mail_domain_check() and not domain_receives_mail(domain):
        raise _refuse(
            SignupRefusalReason.NO_MAIL,
            gettext("%(domain)s does not receive mail; check the address.") % {"domain": domain},
            now=now,
        )
    if not rate_hit(
        f"subscribe:domain:{domain}",
        limit=newsletters_settings.RATE_PER_DOMAIN,
        period=newsletters_settings.RATE_PERIOD,
    ):
        raise _refuse(
            SignupRefusalReason.DOMAIN,
            gettext("Too many requests for addresses at this domain; try again later."),
            now=now,
        )
