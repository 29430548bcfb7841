"""Whether SITE_URL's one-click unsubscribe endpoint answers a mail provider's RFC 8058 POST over HTTPS.

Gmail and Yahoo POST `List-Unsubscribe=One-Click` to the List-Unsubscribe URL, over HTTPS
with a certificate they trust, without cookies or a CSRF token, and follow no redirect. The
probe posts the same way to the signed link of a subscription that does not exist (id 0),
with a body the endpoint refuses ("List-Unsubscribe=Check"): the endpoint's own answer to
that (400, naming the body it expects) proves the route, the CSRF exemption, the same
SECRET_KEY and the certificate, and no reader is ever unsubscribed. Opt-in (the command's
--one-click): it needs the site to be reachable from here.
"""

import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

from digest.deliverability.findings import Finding, Level
from newsletters.tokens import unsubscribe_url

PROBE_BODY = b"List-Unsubscribe=Check"
EXPECTED_ANSWER = b"List-Unsubscribe=One-Click"  # the endpoint's 400 names the body it expects


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer of its own: urllib raises HTTPError with its 3xx


def one_click_check(*, timeout: float = 10.0) -> list[Finding]:
    """POST to the one-click endpoint as a mail provider does; say whether it would work."""
    url = unsubscribe_url(0)
    host = urlsplit(url).hostname or ""
    if not url.startswith("https://"):
        return [
            Finding(
                Level.ERROR, "one_click.not_https", host,
                f"SITE_URL={settings.SITE_URL} is not HTTPS: mail providers ignore one-click links that are not.",
                f"SITE_URL=https://{host}",
            )
        ]  # fmt: skip
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context()), _NoRedirects()
    )
    request = urllib.request.Request(
        url, data=PROBE_BODY, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            status, body = response.status, response.read(4096)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(4096)
    except urllib.error.URLError as error:
        if isinstance(error.reason, ssl.SSLCertVerificationError):
            return [
                Finding(
                    Level.ERROR, "one_click.certificate", host,
                    f"{settings.SITE_URL}: the certificate is not trusted ({error.reason.verify_message}); "
                    "mail providers will not post to it.",
                )
            ]  # fmt: skip
        return [Finding(Level.ERROR, "one_click.unreachable", host, f"{settings.SITE_URL}: {error.reason}.")]
    except OSError as error:  # a timeout or a reset after connecting
        return [Finding(Level.ERROR, "one_click.unreachable", host, f"{settings.SITE_URL}: {error}.")]
    if status == 400 and EXPECTED_ANSWER in body:
        return [Finding(Level.OK, "one_click.ok", host, f"{host} answers one-click POSTs over HTTPS.")]
    why = {3: "a redirect, which providers do not follow", 4: "refused (a CSRF check or a proxy?)"}
    return [
        Finding(
            Level.ERROR, "one_click.unexpected", host,
            f"A one-click POST to {settings.SITE_URL} got {status}, {why.get(status // 100, 'not the endpoint')}.",
        )
    ]  # fmt: skip
