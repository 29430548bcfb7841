"""What the spam filters of mail providers make of our mail: SpamAssassin and rspamd find nothing.

The demo digests, a digest of a long hard issue, the confirmation mail and the welcome mail
are sent as a deployment sends them (its own domain, DKIM-signed, VERP envelope) and
scored: SpamAssassin with its local rules (-L) must give 0.0 or less, and rspamd, asked as a
receiving MX would ask it, must find no symbol caused by the engine. `make spamfilters`
installs both; docs/mail-clients.md explains the scores.
"""

import datetime
import io
import json
import textwrap

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from digest.rendering.dkim import dns_record
from digest.run import digest_run
from newsletters.models import Newsletter, Subscriber, Subscription
from newsletters.services import subscription_request
from tests.digest.rendering.test_clients import HEBREW, LARGE_IMAGE, LONG_CODE, LONG_URL, WIDE
from tests.digest.rendering.test_clip import long_issue
from tests.digest.rendering.test_dkim import pem
from tests.digest.sending.test_senders import SENDERS
from tests.dnsserver import DnsServer
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.letters import welcome_deliver
from tests.spamfilters import Rspamd, require, spamassassin

pytestmark = pytest.mark.django_db

DOMAIN, SELECTOR = "news.example.com", "mail2026"
# The relay that hands our mail to the reader's provider: its address, name and HELO.
RELAY_IP, RELAY = "192.0.2.10", "mail.news.example.com"
HARD_READER = "hard.cases@example.net"
ADDRESS = "Hard Cases Ltd\n1 Rue de la Paix\n75002 Paris, France"

# What rspamd may find and why none of it is a finding. Any symbol with a negative (good)
# score passes; any other must be named here with a score of zero, so a new symbol, or one
# of these given weight by a new rspamd, fails the test.
SETUP_SYMBOLS = {
    # The message comes straight from the engine: the relay and the reader's MX each add a
    # Received field on the way, which a real MX would see.
    "RCVD_COUNT_ZERO": "no Received field yet: the relays add them",
    # Only forwarders (mailing list servers, Gmail's forwarding) add an ARC seal.
    "ARC_NA": "no ARC seal: forwarders add them, senders do not",
}
# Facts rspamd records about every mail of its kind, weighing nothing.
FACTS = {
    "DKIM_TRACE": "which signatures were checked (here: ours, valid)",
    "FROM_HAS_DN": "the From field has a display name",
    "TO_DN_ALL": "the To field has the reader's name",
    "TO_DN_NONE": "the To field has no name (a reader who gave none)",
    "TO_MATCH_ENVRCPT_ALL": "the To address is the envelope recipient",
    "RCPT_COUNT_ONE": "one recipient per message",
    "MIME_TRACE": "the MIME structure",
    "HAS_ATTACHMENT": "an issue's files are attached",
    "HAS_REPLYTO": "the newsletter's Reply-To",
    "REPLYTO_DOM_EQ_FROM_DOM": "the Reply-To is on the From's domain",
    "MID_RHS_MATCH_FROM": "the Message-ID's domain is the From's",
    "PRECEDENCE_BULK": "digests say Precedence: bulk",
    "FROM_EQ_ENVFROM": "system mails: the envelope sender is the From address",
    "FROM_NEQ_ENVFROM": "digests: the VERP envelope sender (bounces+TOKEN@) is not the From address",
    "TAGGED_FROM": "digests: the VERP envelope sender's +TOKEN",
    "FORGED_SENDER_MAILLIST": "digests: envelope sender and From differ in a mail with list headers, as lists do",
}
# Proof that the sender is who it says: a valid DKIM signature, SPF and DMARC pass.
AUTHENTICATED = {"R_DKIM_ALLOW", "R_SPF_ALLOW", "DMARC_POLICY_ALLOW"}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rspamd(key):
    """A private rspamd asking a DNS server that publishes the sender's records (SPF, DKIM, DMARC, rDNS)."""
    record = dns_record(key)
    records = {
        (RELAY, "A"): [RELAY_IP],
        (".".join(reversed(RELAY_IP.split("."))) + ".in-addr.arpa", "PTR"): [RELAY],
        (DOMAIN, "MX"): [f"10 {RELAY}"],
        (DOMAIN, "A"): [RELAY_IP],
        (DOMAIN, "TXT"): [f"v=spf1 ip4:{RELAY_IP} -all"],
        (f"_dmarc.{DOMAIN}", "TXT"): [f"v=DMARC1; p=reject; rua=mailto:dmarc@{DOMAIN}"],
        # DNS strings hold at most 255 characters: a 2048-bit key is published as several.
        (f"{SELECTOR}._domainkey.{DOMAIN}", "TXT"): [textwrap.wrap(record, 250)],
    }
    with DnsServer(records) as dns, Rspamd(dns=dns.address) as server:
        yield server


@pytest.fixture(params=SENDERS)
def mails(request, smtp_server, settings, tmp_path, key) -> dict[str, tuple[bytes, str, str]]:
    """Every kind of mail the engine sends, as its relay received it: {name: (data, envelope sender, recipient)}.

    Digests leave by the fast path, or by Django's message build (a subclass of the SMTP
    backend), the way anymail and the file and console backends build them too.
    """
    settings.MAILERS = {**settings.MAILERS, "digest": {**smtp_server.mailer(), "BACKEND": SENDERS[request.param]}}
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem(key))
    settings.DIGEST_DKIM_DOMAIN, settings.DIGEST_DKIM_SELECTOR, settings.DIGEST_DKIM_KEY_FILE = (
        DOMAIN,
        SELECTOR,
        str(path),
    )
    settings.SITE_URL = f"https://{DOMAIN}"
    settings.DEFAULT_FROM_EMAIL = f"Newsletters <newsletters@{DOMAIN}>"
    settings.DIGEST_BOUNCE_ADDRESS = f"bounces@{DOMAIN}"
    settings.DIGEST_UNSUBSCRIBE_MAILTO = f"unsubscribe@{DOMAIN}"
    now = timezone.now()
    call_command("load_demo", "--no-editor", stdout=io.StringIO())
    # The demo's addresses are @localhost, for a laptop; a deployment sends from its own
    # domain, the one the DNS server publishes records for.
    for newsletter in Newsletter.objects.all():
        newsletter.from_email = f"{newsletter.name} <{newsletter.slug}@{DOMAIN}>"
        newsletter.reply_to = f"editors@{DOMAIN}" if newsletter.reply_to else ""
        newsletter.list_id = ""
        newsletter.save()
    # A long hard issue, in a newsletter of its own: 60 KB of prose, lists, code and tables
    # (shortened for Gmail's clip), a wide table, a long line of code, a long URL, an image
    # and right-to-left text.
    hard = NewsletterFactory(
        name="Hard Cases", slug="hard-cases", from_email=f"Hard Cases <hard-cases@{DOMAIN}>", postal_address=ADDRESS
    )
    SubscriptionFactory(
        subscriber=SubscriberFactory(email=HARD_READER, name="Zoë Ünicode"), newsletter=hard, frequency="immediate"
    )
    IssueFactory(
        newsletter=hard,
        title="Everything at once",
        body=f"A long address: {LONG_URL}\n\n{WIDE}\n{LONG_CODE}\n{LARGE_IMAGE}\n{HEBREW}\n{long_issue(60_000)}",
        publish_at=now - datetime.timedelta(minutes=30),
    )
    Subscription.objects.filter(subscriber__email=HARD_READER).update(created_at=now - datetime.timedelta(days=2))
    assert digest_run(now=now).failed == 0
    # One digest of each kind: the others of its group differ only in the reader's links.
    found = {}
    for received in smtp_server.received:
        message = received.message
        found.setdefault(f"digest {message['Subject']} ({message['List-Id'].split('<')[-1][:-1]})", received)
    (hard_digest,) = [received for received in found.values() if HARD_READER in received.recipients]
    assert "Read the rest online" in hard_digest.message.get_body(("plain",)).get_content()  # cut for the clip
    assert len(found) >= 3  # the demo's two newsletters and the hard issue
    count = len(smtp_server.received)
    demo = Newsletter.objects.get(slug="django-weekly")
    cache.clear()  # the sign-up rate limits count in the cache, which outlives a test
    assert subscription_request(
        email="new.reader@example.org", name="Zoë", tz="UTC", choices={demo.pk: "daily"}, client="203.0.113.7", now=now
    )
    found["confirmation"] = smtp_server.received[count]
    assert welcome_deliver(subscriber=Subscriber.objects.get(email="ada@example.com"), newsletter=demo, now=now)
    found["welcome"] = smtp_server.received[count + 1]
    return {name: (r.data, r.sender, r.recipients[0]) for name, r in found.items()}


@pytest.fixture(scope="module")
def spamassassin_installed() -> None:
    """Skip (fail on CI) before anything is rendered when SpamAssassin is missing."""
    require("spamassassin")


def test_spamassassin_scores_every_mail_at_most_zero(spamassassin_installed, mails, tmp_path):
    verdicts = spamassassin([data for data, _, _ in mails.values()], home=tmp_path)
    scores = {name: verdict for name, verdict in zip(mails, verdicts, strict=True)}
    print("\nSpamAssassin:", json.dumps({name: [v.score, v.rules] for name, v in scores.items()}, indent=1))
    above = {name: verdict for name, verdict in scores.items() if verdict.score > 0}
    assert not above, above


def test_rspamd_finds_nothing_the_engine_caused(mails, rspamd):
    findings, unauthenticated = {}, {}
    known = SETUP_SYMBOLS | FACTS
    for name, (data, sender, recipient) in mails.items():
        symbols = rspamd.scan(data, ip=RELAY_IP, helo=RELAY, sender=sender, recipient=recipient)
        unexpected = {
            symbol: score for symbol, score in symbols.items() if not (score < 0 or (score == 0 and symbol in known))
        }
        if unexpected:
            findings[name] = unexpected
        if missing := AUTHENTICATED - set(symbols):
            unauthenticated[name] = sorted(missing)
    assert not findings, json.dumps(findings, indent=1)
    assert not unauthenticated, unauthenticated
