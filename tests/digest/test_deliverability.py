"""The deliverability check against a real DNS server on loopback: one good zone, and 12 zones with one mistake each."""

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.urls import reverse

from digest.checks import check_deliverability
from digest.deliverability.dmarc import DmarcSyntaxError, aligned, dmarc_parse, organizational_domain
from digest.deliverability.findings import Level
from digest.deliverability.lookup import Dns
from digest.deliverability.oneclick import one_click_check
from digest.deliverability.records import transport_check
from digest.deliverability.report import deliverability_check
from digest.deliverability.spf import SpfSyntaxError, spf_parse
from digest.rendering.dkim import dns_record, key_create
from tests.dnsserver import DnsServer
from tests.factories import NewsletterFactory
from tests.httpsserver import HttpsSite, certificates_make

RELAY = "relay.mail.test"
SELECTOR = "s2026"
SIGNER = "signer.test"  # the other organization the misaligned zone signs as


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Three keys, made once: the signing key, another one, and a 1024-bit one."""
    folder = tmp_path_factory.mktemp("dkim")
    return {
        name: (folder / f"{name}.pem", key_create(folder / f"{name}.pem", bits=bits))
        for name, bits in (("good", 2048), ("other", 2048), ("weak", 1024))
    }


def _dkim_strings(key: rsa.RSAPrivateKey) -> list[str]:
    value = dns_record(key)
    return [value[start : start + 250] for start in range(0, len(value), 250)]  # as zone files split it


def good_zone(domain: str, key) -> dict:
    """Everything a sending domain should publish."""
    return {
        (domain, "TXT"): [["v=spf1 mx include:_spf.mail.test -all"], ["google-site-verification=abc"]],
        (domain, "MX"): [f"10 mx.{domain}"],
        (f"mx.{domain}", "A"): ["198.51.100.7"],
        (f"{SELECTOR}._domainkey.{domain}", "TXT"): [_dkim_strings(key)],
        (f"_dmarc.{domain}", "TXT"): [f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"],
        (f"_mta-sts.{domain}", "TXT"): ["v=STSv1; id=20261201"],
        (f"_smtp._tls.{domain}", "TXT"): [f"v=TLSRPTv1; rua=mailto:tls@{domain}"],
    }


def _set(name: str, rdtype: str, *values):
    def change(zone: dict, domain: str, keys) -> None:
        key = (name.format(domain=domain), rdtype)
        if values:
            zone[key] = list(values)
        else:
            del zone[key]

    return change


ELEVEN_LOOKUPS = "v=spf1 include:_spf.mail.test " + " ".join(f"a:h{n}.{{domain}}" for n in range(10)) + " -all"
BROKEN = {
    # zone: (the one change to the good zone, the one finding expected)
    "nospf": (_set("{domain}", "TXT", "google-site-verification=abc"), "spf.missing"),
    "spfnorelay": (_set("{domain}", "TXT", "v=spf1 mx -all"), "spf.relay_not_covered"),
    "spflookups": (lambda zone, domain, keys: zone.update({(domain, "TXT"): [ELEVEN_LOOKUPS.format(domain=domain)]}), "spf.too_many_lookups"),
    "spftwo": (_set("{domain}", "TXT", "v=spf1 include:_spf.mail.test -all", "v=spf1 mx -all"), "spf.multiple"),
    "nodkim": (_set(SELECTOR + "._domainkey.{domain}", "TXT"), "dkim.missing"),
    "dkimmismatch": (
        lambda zone, domain, keys: zone.update({(f"{SELECTOR}._domainkey.{domain}", "TXT"): [_dkim_strings(keys["other"][1])]}),
        "dkim.mismatch",
    ),
    "dkimweak": (
        lambda zone, domain, keys: zone.update({(f"{SELECTOR}._domainkey.{domain}", "TXT"): [_dkim_strings(keys["weak"][1])]}),
        "dkim.weak_key",
    ),
    "nodmarc": (_set("_dmarc.{domain}", "TXT"), "dmarc.missing"),
    "dmarcobsolete": (_set("_dmarc.{domain}", "TXT", "v=DMARC1; p=reject; pct=100; rf=afrf; ri=86400"), "dmarc.obsolete_tags"),
    "dmarcmisaligned": (lambda zone, domain, keys: None, "dmarc.dkim_misaligned"),  # signs as SIGNER: see settings
    "nomx": (_set("{domain}", "MX"), "bounce.no_mx"),
    "dmarcmalformed": (_set("_dmarc.{domain}", "TXT", "v=DMARC1; p=block"), "dmarc.malformed"),
}  # fmt: skip


@pytest.fixture(scope="module")
def dns_server(keys):
    """One server for every zone: good.test and each broken zone, the relay and its ESP-style include."""
    records = {
        (RELAY, "A"): ["192.0.2.25"],
        (RELAY, "AAAA"): ["2001:db8::25"],
        ("_spf.mail.test", "TXT"): ["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"],
        (f"{SELECTOR}._domainkey.{SIGNER}", "TXT"): [_dkim_strings(keys["good"][1])],
        **good_zone("good.test", keys["good"][1]),
    }
    for name, (change, _) in BROKEN.items():
        zone = good_zone(f"{name}.test", keys["good"][1])
        change(zone, f"{name}.test", keys)
        records.update(zone)
    with DnsServer(records) as server:
        yield server


@pytest.fixture
def sending(settings, dns_server, keys):
    """Point the settings at one zone: From, bounce address and DKIM key there, the relay, the local resolver."""

    def use(zone: str) -> None:
        domain = f"{zone}.test"
        key_file = keys["good"][0]  # the engine refuses a shorter key of its own (digest.rendering.dkim.MIN_KEY_BITS)
        settings.DEFAULT_FROM_EMAIL = f"News <news@{domain}>"
        settings.DIGEST_BOUNCE_ADDRESS = f"bounces@{domain}"
        settings.DIGEST_DKIM_DOMAIN = SIGNER if zone == "dmarcmisaligned" else domain
        settings.DIGEST_DKIM_SELECTOR = SELECTOR
        settings.DIGEST_DKIM_KEY_FILE = str(key_file)
        settings.DIGEST_DNS_RESOLVER = dns_server.address
        settings.DIGEST_DNS_TIMEOUT = 2.0
        relay = {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": {"host": RELAY, "port": 587}}
        settings.MAILERS = {"default": relay, "digest": relay}

    return use


def _problems(report) -> set[str]:
    return {finding.code for finding in report.findings if finding.level in (Level.ERROR, Level.WARNING)}


@pytest.mark.django_db
def test_good_zone_passes(sending):
    sending("good")
    report = deliverability_check()
    assert _problems(report) == set()
    assert not report.failed
    codes = {finding.code for finding in report.findings}
    assert {
        "relay.resolved",
        "spf.ok",
        "dkim.ok",
        "dmarc.ok",
        "bounce.mx",
        "mta_sts.present",
        "tls_rpt.present",
    } <= codes


@pytest.mark.django_db
@pytest.mark.parametrize("zone", BROKEN)
def test_each_broken_zone_names_exactly_its_mistake(sending, zone):
    sending(zone)
    # The target is under 1 s each. Measured as this process's CPU time (the DNS server's thread
    # included): the machine's CPUs are shared, and other load must not fail the test.
    started = time.process_time()
    report = deliverability_check()
    assert time.process_time() - started < 1.0
    assert _problems(report) == {BROKEN[zone][1]}
    assert report.failed == (BROKEN[zone][1] != "dmarc.obsolete_tags")  # obsolete tags are only a warning


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "record"),
    [
        ("nospf", 'nospf.test. IN TXT "v=spf1 ip4:192.0.2.25 ip6:2001:db8::25 -all"'),
        ("spfnorelay", 'spfnorelay.test. IN TXT "v=spf1 mx ip4:192.0.2.25 ip6:2001:db8::25 -all"'),
        ("spftwo", 'spftwo.test. IN TXT "v=spf1 include:_spf.mail.test mx -all"'),
        ("nodmarc", '_dmarc.nodmarc.test. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@nodmarc.test"'),
        ("dmarcobsolete", '_dmarc.dmarcobsolete.test. IN TXT "v=DMARC1; p=reject"'),
        ("nomx", "nomx.test. IN MX 10 mx.nomx.test."),
        ("dmarcmisaligned", "DIGEST_DKIM_DOMAIN=dmarcmisaligned.test"),
    ],
)
def test_findings_say_what_to_publish(sending, zone, record):
    sending(zone)
    (finding,) = [f for f in deliverability_check().findings if f.code == BROKEN[zone][1]]
    assert finding.publish.startswith(record.removesuffix('"'))


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["nodkim", "dkimmismatch"])
def test_dkim_findings_give_the_record_of_the_configured_key(sending, keys, zone):
    sending(zone)
    (finding,) = [f for f in deliverability_check().findings if f.code == BROKEN[zone][1]]
    assert finding.publish.startswith(f"{SELECTOR}._domainkey.{zone}.test. IN TXT ")
    assert "".join(finding.publish.split('"')[1::2]) == dns_record(keys["good"][1])


@pytest.mark.django_db
def test_each_newsletter_from_domain_is_checked(sending):
    sending("good")
    NewsletterFactory(name="Weekly", from_email="Weekly <weekly@nodmarc.test>")
    NewsletterFactory(name="Daily", from_email="")
    report = deliverability_check()
    titles = [section.title for section in report.sections]
    assert "From good.test (Daily), bounces to good.test" in titles
    assert "From nodmarc.test (Weekly), bounces to good.test" in titles
    # The bounce domain is another organization than nodmarc.test: it cannot align either.
    assert [f.code for f in report.findings if f.domain == "nodmarc.test" and f.level == Level.ERROR] == [
        "dmarc.missing"
    ]


@pytest.mark.django_db
def test_a_relay_on_loopback_is_said_to_be_unchecked(sending, settings):
    sending("good")
    local = {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": {"host": "127.0.0.1"}}
    settings.MAILERS = {"default": local, "digest": local}
    report = deliverability_check()
    assert "relay.internal" in {f.code for f in report.findings}
    assert not report.failed


@pytest.mark.django_db
def test_a_resolver_that_does_not_answer_is_an_error_not_a_missing_record(sending, settings):
    sending("good")
    with DnsServer({}) as stopped:
        address = stopped.address
    settings.DIGEST_DNS_RESOLVER = address  # nothing listens there any more
    settings.DIGEST_DNS_TIMEOUT = 0.2
    report = deliverability_check()
    assert report.failed
    assert {f.code for f in report.findings if f.level == Level.ERROR} == {"dns.failure"}
    assert not any(f.code.endswith(".missing") for f in report.findings)


@pytest.mark.django_db
def test_command_prints_findings_and_counts_and_exits_1_on_errors(sending, capsys):
    sending("good")
    call_command("deliverability_check")
    out = capsys.readouterr().out
    assert "ok       spf.ok" in out
    assert "0 errors, 0 warnings" in out
    sending("spfnorelay")
    with pytest.raises(CommandError) as raised:
        call_command("deliverability_check")
    assert raised.value.returncode == 1
    out = capsys.readouterr().out
    assert "error    spf.relay_not_covered" in out
    assert '    publish: spfnorelay.test. IN TXT "v=spf1 mx ip4:192.0.2.25' in out
    assert "1 error, 0 warnings" in out


@pytest.mark.django_db
def test_admin_page_shows_the_findings_to_staff_only(sending, admin_client, client):
    sending("nodmarc")
    url = reverse("deliverability")
    page = admin_client.get(url).content.decode()
    assert "dmarc.missing" in page
    assert "_dmarc.nodmarc.test. IN TXT" in page
    assert reverse("deliverability") in admin_client.get(reverse("admin:index")).content.decode()
    response = client.get(url)
    assert response.status_code == 302 and "login" in response.url


@pytest.mark.django_db
def test_system_check_runs_only_when_enabled(sending, settings):
    sending("nomx")
    assert check_deliverability(None) == []
    settings.DIGEST_DELIVERABILITY_CHECK = 1
    (warning,) = check_deliverability(None)
    assert warning.id == "digest.W006"
    assert "bounce.no_mx" in warning.msg


def test_spf_terms_are_parsed_and_refused():
    terms = spf_parse("v=spf1 +a/24//64 -ip4:192.0.2.1 ~include:x.test redirect=y.test")
    assert [(t.qualifier, t.name, t.value, t.cidr4, t.cidr6) for t in terms] == [
        ("+", "a", "", 24, 64),
        ("-", "ip4", "192.0.2.1/32", None, None),
        ("~", "include", "x.test", None, None),
        ("", "redirect", "y.test", None, None),
    ]
    for bad in ("v=spf1 ip4:2001:db8::1", "v=spf1 includ:x.test", "v=spf1 include", "v=spf1 ip4:300.1.1.1"):
        with pytest.raises(SpfSyntaxError):
            spf_parse(bad)


def test_dmarc_parse_and_alignment_rule():
    assert dmarc_parse("v=DMARC1; p=quarantine; adkim=s;")["adkim"] == "s"
    for bad in ("v=DMARC1 p=reject", "p=reject; v=DMARC1", "v=DMARC1; p=block", "v=DMARC1; p=none; p=reject"):
        with pytest.raises(DmarcSyntaxError):
            dmarc_parse(bad)
    assert organizational_domain("news.mail.example.co.uk") == "example.co.uk"
    assert organizational_domain("news.example.com") == "example.com"
    assert aligned("example.com", "bounces.example.com", strict=False)
    assert not aligned("example.com", "bounces.example.com", strict=True)
    assert not aligned("a.co.uk", "b.co.uk", strict=False)


def test_resolver_setting_is_read_or_refused(settings):
    settings.DIGEST_DNS_RESOLVER = "127.0.0.1:5353, [::1]:53"
    resolver = Dns.from_settings().resolver
    assert resolver.nameservers == ["127.0.0.1", "::1"]
    assert resolver.nameserver_ports == {"127.0.0.1": 5353, "::1": 53}
    settings.DIGEST_DNS_RESOLVER = "dns.example:53"
    with pytest.raises(ImproperlyConfigured, match="DIGEST_DNS_RESOLVER"):
        Dns.from_settings()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return certificates_make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_site(settings, certificates, monkeypatch):
    """The site over HTTPS, its test CA trusted by this process as a provider trusts a public CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))  # OpenSSL's default trust store, read per context
    settings.ALLOWED_HOSTS = ["localhost"]
    with HttpsSite(certificates) as site:
        settings.SITE_URL = site.url
        yield site


def test_one_click_endpoint_answers_a_providers_post_over_https(https_site):
    assert [finding.code for finding in one_click_check(timeout=5)] == ["one_click.ok"]


def test_one_click_behind_an_untrusted_certificate_is_an_error(https_site, tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates_make(tmp_path)["ca"]))  # another CA than the site's
    (finding,) = one_click_check(timeout=5)
    assert finding.code == "one_click.certificate"


def test_one_click_answered_by_something_else_is_an_error(https_site, settings):
    settings.SITE_URL = f"{https_site.url}/elsewhere"  # a SITE_URL the site does not serve: 404
    (finding,) = one_click_check(timeout=5)
    assert finding.code == "one_click.unexpected"
    assert "got 404" in finding.message


def test_one_click_needs_https(settings):
    settings.SITE_URL = "http://news.example.test"
    (finding,) = one_click_check(timeout=5)
    assert (finding.code, finding.publish) == ("one_click.not_https", "SITE_URL=https://news.example.test")


@pytest.mark.django_db
def test_command_checks_one_click_only_when_asked(sending, https_site, capsys):
    sending("good")
    call_command("deliverability_check")
    assert "one_click" not in capsys.readouterr().out
    call_command("deliverability_check", "--one-click")
    assert "ok       one_click.ok" in capsys.readouterr().out


def test_mta_sts_and_tls_rpt_are_optional_and_suggested(sending):
    sending("good")
    findings = transport_check(Dns.from_settings(), domain="nothing.test")
    assert [(f.level, f.code) for f in findings] == [(Level.INFO, "mta_sts.absent"), (Level.INFO, "tls_rpt.absent")]
    assert findings[1].publish == '_smtp._tls.nothing.test. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@nothing.test"'
