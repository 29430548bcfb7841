"""Confirmation and welcome mails in the digests' layout: the table skeleton, CSS inlined, the links readers use.

Screenshots go to test-output/screenshots/confirm-375.png, confirm-800.png, welcome-375.png and welcome-800.png.
"""

import re
from pathlib import Path

import lxml.html
import pytest
from django.core.cache import cache
from django.utils import timezone

from newsletters.services import subscription_request
from newsletters.tokens import token_read
from tests.digest.conftest import style_block_rules
from tests.digest.rendering.test_clients import FAMILIES, LAYOUT_FINDINGS, doiuse
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory
from tests.letters import welcome_deliver

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

pytestmark = pytest.mark.django_db


def parts(received) -> tuple[str, str]:
    """The (text, html) parts of a received message."""
    message = received.message
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    return text, message.get_body(preferencelist=("html",)).get_content()


def confirmation_mail(smtp_server, *newsletters) -> tuple[str, str]:
    cache.clear()  # the per-address and per-client rate limits
    choices = {newsletter.pk: "weekly" for newsletter in newsletters}
    assert subscription_request(
        email="ann@example.com", name="Ann <Lee>", tz="UTC", choices=choices, client="1.2.3.4", now=timezone.now()
    )
    [received] = smtp_server.received
    return parts(received)


def welcome_mail(smtp_server, newsletter) -> tuple[str, str]:
    assert welcome_deliver(subscriber=SubscriberFactory(name="Ann"), newsletter=newsletter, now=timezone.now())
    [received] = smtp_server.received
    return parts(received)


def received_to(smtp_server) -> str:
    [received] = smtp_server.received
    [recipient] = received.recipients
    return recipient


def assert_email_layout(html: str) -> lxml.html.HtmlElement:
    """The skeleton the digests use: doctype, dark-mode metas, presentation tables, Outlook's 640 px table."""
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "{#" not in html and "{%" not in html  # a template comment spread over lines is shown as text
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<!--[if mso]><table role="presentation" width="640"' in html
    tree = lxml.html.fromstring(html)
    assert tree.get("lang") == "en"  # the shipped language of LANGUAGE_CODE (en-us), the newsletter's default
    # Inlined (Gmail's apps for other accounts drop <style>) but the @media rules, which only a <style> can hold.
    assert all(rule.startswith("@media") for rule in style_block_rules(html))
    assert not tree.xpath("//link[@rel='stylesheet']")
    [wrapper] = tree.find_class("wrapper")
    [container] = tree.find_class("container")
    for table in (wrapper, container):
        assert table.tag == "table" and table.get("role") == "presentation"
    assert "max-width:640px" in container.get("style").replace(" ", "")
    assert "background-color:#f4f4f2" in tree.body.get("style").replace(" ", "")
    [preheader] = tree.find_class("preheader")
    assert preheader.get("style") == "display:none;max-height:0;overflow:hidden;mso-hide:all"
    return tree


def test_the_confirmation_mail_uses_the_email_layout_and_links_to_the_confirmation(client, smtp_server):
    notes = NewsletterFactory(name="Notes", postal_address="Notes Ltd\n1 Rue de la Paix\n75002 Paris")
    news = NewsletterFactory(name="News", postal_address="Notes Ltd\n1 Rue de la Paix\n75002 Paris")
    text, html = confirmation_mail(smtp_server, notes, news)
    tree = assert_email_layout(html)
    assert tree.find_class("masthead")[0].text_content() == "Confirm your subscription"
    assert tree.find_class("greeting")[0].text_content() == "Hello Ann <Lee>,"  # escaped, shown as written
    assert [li.text_content() for li in tree.xpath("//td[contains(@class, 'content')]//li")] == [
        "News (weekly)",
        "Notes (weekly)",
    ]
    [link_in_text] = re.findall(r"http://\S+/confirm/\S+/", text)
    # One link in each part: a second one here (the address written out) would count the
    # link three times across the parts, which rspamd scores (URI_COUNT_ODD).
    [button] = tree.xpath("//a[contains(@href, '/confirm/')]")
    assert button.get("href") == link_in_text
    assert button.text_content() == "Confirm my subscription"
    cell = button.getparent()
    assert cell.tag == "td" and cell.get("bgcolor") == "#0b5cad"  # Outlook draws the button from the cell
    assert "color:#fff;" in button.get("style").replace(" ", "")
    # The link leads to the confirmation page (one button: scanners only follow links).
    page = client.get(link_in_text.split("testserver", 1)[-1])
    assert page.status_code == 200 and b"ann@example.com" in page.content
    # One postal address for the two newsletters that share it.
    [address] = tree.find_class("postal-address")
    assert address.text_content() == "Notes Ltd1 Rue de la Paix75002 Paris" and len(address.findall("br")) == 2
    assert "If you did not ask for this, ignore this message" in tree.find_class("footer")[0].text_content()


def test_the_confirmation_mail_has_no_postal_address_when_none_is_set(smtp_server):
    _, html = confirmation_mail(smtp_server, NewsletterFactory(postal_address=""))
    assert not assert_email_layout(html).find_class("postal-address")


def test_the_confirmation_mail_text_part_ends_with_the_postal_address(smtp_server, settings):
    settings.SITE_URL = "https://news.example.org"
    text, _ = confirmation_mail(smtp_server, NewsletterFactory(name="Notes", postal_address="Somewhere"))
    link = re.search(r"https://news\.example\.org/confirm/\S+/", text).group()
    assert text == (
        "Hello Ann <Lee>,\n\nSomeone, hopefully you, asked to receive:\n- Notes (weekly)\n\n"
        f"Confirm with this link (it works for 7 days):\n{link}\n\n"
        "If you did not ask for this, ignore this message: nothing will be sent.\n\nSomewhere\n\n"
    )


def raw_header(data: bytes, name: str) -> bytes:
    """One header field's value as it is on the wire (continuation lines included)."""
    match = re.search(rb"^" + name.encode() + rb": (.*\r\n(?:[ \t].*\r\n)*)", data, re.MULTILINE | re.IGNORECASE)
    assert match, name
    return match.group(1)


def test_the_confirmation_mail_is_auto_generated_with_a_message_id_on_the_site(smtp_server, settings):
    settings.SITE_URL = "https://news.example.org"
    text, _ = confirmation_mail(smtp_server, NewsletterFactory(name="Notes"))
    [received] = smtp_server.received
    assert raw_header(received.data, "Auto-Submitted") == b"auto-generated\r\n"
    assert received.message["Message-ID"].endswith("@news.example.org>")
    # The token is compressed; its URL still starts no path segment with a dot (a "hidden path" to filters).
    assert "/confirm/" in text and "/." not in text


def test_the_welcome_mail_has_list_headers_and_the_postal_address_in_both_parts(smtp_server, settings):
    settings.SITE_URL = "https://news.example.org"
    newsletter = NewsletterFactory(name="Weekly Notes", slug="weekly", postal_address="Notes Ltd", welcome_text="Hi.")
    subscription = SubscriptionFactory(newsletter=newsletter, subscriber=SubscriberFactory(name="Ann"))
    assert welcome_deliver(subscriber=subscription.subscriber, newsletter=newsletter, now=timezone.now())
    [received] = smtp_server.received
    # The token is timestamped: read it back rather than signing a second one, which may fall in another second.
    unsubscribe = re.fullmatch(
        rb"<https://news\.example\.org/u/([^/>]+)/>\r\n", raw_header(received.data, "List-Unsubscribe")
    )
    assert unsubscribe, raw_header(received.data, "List-Unsubscribe")
    assert token_read(unsubscribe[1].decode(), purpose="unsubscribe", kind=int) == subscription.pk
    assert raw_header(received.data, "List-Unsubscribe-Post") == b"List-Unsubscribe=One-Click\r\n"
    assert raw_header(received.data, "List-Id") == b"Weekly Notes <weekly.news.example.org>\r\n"
    assert received.message["Message-ID"].endswith("@news.example.org>")
    text, html = parts(received)
    assert text.rstrip().endswith("Notes Ltd") and "Notes Ltd" in html


def test_the_welcome_mail_uses_the_email_layout(smtp_server, settings):
    settings.SITE_URL = "https://news.example.org"
    newsletter = NewsletterFactory(
        name="Weekly Notes",
        slug="weekly",
        postal_address="Notes Ltd\n1 Rue de la Paix",
        welcome_text="Glad you're here.\n\n## What to expect\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
    )
    IssueFactory(newsletter=newsletter, title="Latest", slug="latest")
    text, html = welcome_mail(smtp_server, newsletter)
    tree = assert_email_layout(html)
    assert tree.find_class("masthead")[0].text_content() == "Weekly Notes"
    assert tree.find_class("greeting")[0].text_content() == "Hello Ann,"
    assert tree.find_class("preheader")[0].text_content().startswith("Glad you're here. What to expect")
    [content] = tree.find_class("letter")
    assert content.xpath(".//h2")[0].text_content() == "What to expect"
    assert "font-size:18px" in content.xpath(".//h2")[0].get("style").replace(" ", "")  # the digests' type scale
    assert content.xpath(".//table")[0].getparent().get("class") == "table-scroll"  # scrolls in its box on a phone
    [latest] = content.xpath(".//a[text()='Latest']")
    assert latest.get("href") == "https://news.example.org/n/weekly/latest/"
    footer = tree.find_class("footer")[0]
    hrefs = [a.get("href") for a in footer.iter("a")]
    assert hrefs[0].startswith("https://news.example.org/p/") and hrefs[1] == "https://news.example.org/n/weekly/"
    assert footer.find_class("postal-address")[0].text_content() == "Notes Ltd1 Rue de la Paix"
    # The text part says the same as before the layout.
    assert text.startswith("Hello Ann,\n\nGlad you're here.\n\n")
    assert "The latest issue: Latest\nhttps://news.example.org/n/weekly/latest/\n\n" in text
    # The footer names the address the reader gets it at, in both parts.
    assert f"You receive Weekly Notes at {received_to(smtp_server)}." in text
    assert f"You receive Weekly Notes at {received_to(smtp_server)}." in footer.text_content()


def test_the_welcome_mail_has_no_postal_address_when_none_is_set(smtp_server):
    _, html = welcome_mail(smtp_server, NewsletterFactory(postal_address="", welcome_text="Hi."))
    assert not assert_email_layout(html).find_class("postal-address")


MEASURE = """() => ({
    mode: document.compatMode,
    page: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    card: document.querySelector('table.container').getBoundingClientRect().width,
    widest: Math.max(...[...document.querySelectorAll('table.container *')].map((el) => el.getBoundingClientRect().right)),
})"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 800])
def test_confirmation_and_welcome_mails_fit_phone_and_desktop(request, smtp_server, settings, width):
    settings.SITE_URL = "https://news.example.org"
    newsletter = NewsletterFactory(
        name="Django Weekly Notes",
        slug="django-weekly",
        postal_address="Django Weekly Notes\n1 Rue de la Paix\n75002 Paris, France",
        welcome_text=(
            "Glad you're here. Every Monday: what changed in Django, tips from the community and one "
            "longer read. Reply to any issue to reach the editors.\n\n## Where to start\n\n"
            "- [The release notes](https://docs.djangoproject.com/en/stable/releases/)\n- The archive, below\n"
        ),
    )
    IssueFactory(newsletter=newsletter, title="Mailers in Django 6.1", slug="mailers")
    mails = {"confirm": confirmation_mail(smtp_server, newsletter)[1]}
    smtp_server.received.clear()
    mails["welcome"] = welcome_mail(smtp_server, newsletter)[1]
    # The browser starts once the mails are sent: Playwright's event loop and the ORM do not mix.
    browser = request.getfixturevalue("chromium")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, html in mails.items():
        page = browser.new_page(viewport={"width": width, "height": 700})
        page.set_content(html, wait_until="load")
        figures = page.evaluate(MEASURE)
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        assert figures["mode"] == "CSS1Compat", name  # standards mode: the doctype survived inlining
        assert figures["page"] <= figures["viewport"], (name, figures)  # nothing scrolls sideways
        assert figures["card"] == min(640, width - 16), (name, figures)  # 640 px column, 8 px margins on a phone
        assert figures["widest"] <= (width + min(640, width - 16)) / 2 + 0.5, (name, figures)  # nothing sticks out
        page.close()


def test_doiuse_email_finds_no_error_in_the_confirmation_and_welcome_mails(smtp_server, tmp_path):
    newsletter = NewsletterFactory(postal_address="1 Rue de la Paix", welcome_text="Hi.\n\n## Next\n\n- one\n")
    mails = {"confirm": confirmation_mail(smtp_server, newsletter)[1]}
    smtp_server.received.clear()
    mails["welcome"] = welcome_mail(smtp_server, newsletter)[1]
    report = {(name, family): doiuse(html, family, tmp_path) for name, html in mails.items() for family in FAMILIES}
    # The layout's fallbacks (as in digests); Outlook for Windows (Word's engine and Windows
    # Mail) draws the confirmation button with square corners; nothing else is lost.
    expected = {(name, family): LAYOUT_FINDINGS[family] for name, family in report}
    square = [f"`border-radius` is not supported by `outlook.{client}`" for client in ("windows", "windows-mail")]
    expected["confirm", "outlook.*"] = sorted(square + LAYOUT_FINDINGS["outlook.*"])
    assert report == expected


def test_inline_styles_carry_no_weight_they_need_not(smtp_server):
    """Every byte of inline style is repeated per element, and Gmail clips the HTML at ~102 KB."""
    newsletter = NewsletterFactory(welcome_text="One paragraph.\n\nAnother.\n\n- an item\n- and one more\n")
    _, html = welcome_mail(smtp_server, newsletter)
    assert not re.search(r' style="[^"]*[;,] ', html)  # no space after a declaration or in a font list
    tree = lxml.html.fromstring(html)
    [letter] = tree.find_class("letter")
    assert "word-break:break-word" in letter.get("style")  # once, inherited
    assert not [e for e in letter.iter("p", "li") if "word-break" in (e.get("style") or "")]
