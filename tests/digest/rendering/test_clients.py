"""Real digests as mail clients see them: caniemail's data (doiuse-email) and Chromium at phone and desktop widths.

`make email-tools` installs doiuse-email into var/node/; `make browser` installs Chromium.
Screenshots go to test-output/screenshots/digest-375.png and digest-800.png.
"""

import io
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageFont

from newsletters.emails import email_themes
from newsletters.models import Newsletter
from tests.digest.conftest import at, body

ROOT = Path(__file__).resolve().parents[3]
# Its command has no #! line: node runs it.
DOIUSE = ROOT / "var" / "node" / "node_modules" / "doiuse-email" / "bin" / "cli.js"
SHOTS = ROOT / "test-output" / "screenshots"
# The client families the layout must hold up in: every Gmail, Apple Mail, Outlook (Windows
# with Word's engine, Windows Mail, macOS, iOS, Android, the web), Yahoo and Samsung Mail.
FAMILIES = ["gmail.*", "apple-mail.*", "outlook.*", "yahoo.*", "samsung-email.*"]
# What doiuse-email reports that is a deliberate fallback: a declaration the named clients
# ignore, each safely, since another declaration or the plain layout covers it. Any other
# report, or one of these for another client, fails the tests; so does one that is gone
# (then remove it here). docs/mail-clients.md explains each.
LAYOUT_FALLBACKS = {
    # The preheader is hidden by four declarations and each client honours one: display:none
    # nearly everywhere, max-height:0 with overflow:hidden in Gmail's mobile webmail,
    # mso-hide:all in Outlook for Windows.
    "display:none": ["gmail.mobile-webmail"],
    # overflow: the preheader's (display:none hides it there) and the scroll box of wide
    # tables and code, without which their columns and lines wrap instead (the 375 px test
    # that drops overflow).
    "overflow": ["outlook.android", "outlook.windows", "outlook.windows-mail", "yahoo.android"],
    # Long words and URLs break with overflow-wrap: anywhere where it is honoured, else with
    # word-wrap: break-word (its older name, which caniemail does not track) and word-break:
    # break-word; the 375 px test drops each in turn.
    "overflow-wrap": [
        "gmail.android",
        "gmail.desktop-webmail",
        "gmail.ios",
        "apple-mail.ios",
        "apple-mail.macos",
        "outlook.android",
        "outlook.ios",
        "outlook.windows",
        "outlook.windows-mail",
        "yahoo.android",
        "yahoo.desktop-webmail",
        "yahoo.ios",
    ],
    "word-break": ["outlook.windows-mail", "yahoo.android", "yahoo.desktop-webmail", "yahoo.ios"],
    # The <style> block's @media rules are enhancements: where they are ignored the mail stays
    # light and an image without a width of its own is drawn at the column's width.
    "@media": ["gmail.mobile-webmail", "outlook.windows", "outlook.windows-mail"],
    # Apps that show a message inside their own page drop its <body>: its background and font
    # are repeated on the wrapper table and its cells.
    "<body> element": ["outlook.android", "outlook.ios", "yahoo.android", "yahoo.ios"],
    # role="presentation" tells screen readers the layout tables hold no data; where it is
    # dropped they are read as tables, nothing is hidden.
    "role attribute": ["outlook.windows-mail"],
}
# What editors' content (not the layout) may add: code blocks keep their lines with
# white-space: pre-wrap; where it is ignored, <pre> keeps them unwrapped and scrolls.
CONTENT_FALLBACKS = {"white-space": ["outlook.windows", "outlook.windows-mail", "samsung-email.android"]}


def unsupported(fallbacks: dict[str, list[str]], family: str) -> list[str]:
    """doiuse-email's messages for the fallbacks of one client family ("outlook.*")."""
    prefix = family.removesuffix("*")
    return sorted(
        f"`{feature}` is not supported by `{client}`"
        for feature, clients in fallbacks.items()
        for client in clients
        if client.startswith(prefix)
    )


LAYOUT_FINDINGS = {family: unsupported(LAYOUT_FALLBACKS, family) for family in FAMILIES}
CONTENT_FINDINGS = {family: unsupported(CONTENT_FALLBACKS, family) for family in FAMILIES}

pytestmark = pytest.mark.django_db

PROSE = """The first paragraph, with **bold**, a [link](https://docs.example.com) and `code`.[^1]

## A section

- one
- two

> A quote.

![A chart](https://img.example.com/chart.png)

[^1]: A footnote.
"""
WIDE = (
    "| Client | Engine | Tables | Media queries | Dark mode | Footnotes | Notes |\n"
    "|---|---|---|---|---|---|---|\n"
    "| Outlook for Windows | Word | yes | no | forced inversion | dead anchors | 120 dpi scaling of fixed widths |\n"
    "| Gmail app (Android) | Blink | yes | partly | forced inversion | dead anchors | strips the head style block |\n"
)
LONG_CODE = "```\n" + "x = " + "+".join(f"value_{n}" for n in range(60)) + "\n```\n"
LARGE_IMAGE = "![A wide chart](https://img.example.com/wide.png)\n"


TITLES = ["What mail clients do with your email", "Notes from the week"]


def digest_html(world, *bodies: str, titles: list[str] = TITLES) -> str:
    """Publish one issue per body, run the digest and return the HTML part a reader received."""
    world.subscribe("ada@example.com", name="Ada Lovelace", since=at(2026, 6, 1))
    for number, text in enumerate(bodies):
        world.publish(titles[number], at(2026, 6, 1, 12, number), body=text)
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    return body(message, "html")


# ------------------------------------------------------------- caniemail (doiuse-email)


def doiuse(html: str, family: str, tmp_path: Path) -> list[str]:
    """The errors doiuse-email reports for one client family."""
    if not (DOIUSE.exists() and shutil.which("node")):
        if os.environ.get("CI"):
            pytest.fail(f"{DOIUSE} is missing; `make email-tools` installs it")
        pytest.skip("doiuse-email is not installed; `make email-tools` installs it")
    page = tmp_path / "digest.html"
    page.write_text(html)
    result = subprocess.run(
        ["node", str(DOIUSE), "--email-clients", family, str(page)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return sorted(set(json.loads(result.stdout).get("errors", [])))


def test_doiuse_email_finds_no_error_in_the_layout(world, tmp_path):
    html = digest_html(world, PROSE, "A second issue.\n\n### Smaller heading\n\n1. first\n2. second\n")
    report = {family: doiuse(html, family, tmp_path) for family in FAMILIES}
    print("\nLayout (prose issues):", json.dumps(report, indent=1))
    assert report == LAYOUT_FINDINGS


def test_doiuse_email_finds_only_the_known_content_findings_in_tables_and_code(world, tmp_path):
    html = digest_html(world, WIDE + "\n" + LONG_CODE + "\n" + LARGE_IMAGE)
    report = {family: doiuse(html, family, tmp_path) for family in FAMILIES}
    print("\nTables, code and a large image:", json.dumps(report, indent=1))
    assert report == {family: sorted(LAYOUT_FINDINGS[family] + CONTENT_FINDINGS[family]) for family in FAMILIES}


# ------------------------------------------------------------- Chromium at 375 and 800 px


def png(width: int, height: int) -> bytes:
    """A striped RGB PNG of the given size (the image a wide chart would be)."""
    row = b"\x00" + b"".join(bytes((30, 90, 170)) if (x // 100) % 2 else bytes((240, 180, 40)) for x in range(width))
    rows = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


MEASURE = """() => {
    const box = (el) => el.getBoundingClientRect();
    const card = document.querySelector('table.container');
    const pre = document.querySelector('pre');
    const scroller = document.querySelector('div.table-scroll');
    const image = document.querySelector('img[alt="A wide chart"]');
    return {
        mode: document.compatMode,
        page: document.documentElement.scrollWidth,
        viewport: window.innerWidth,
        cardRight: box(card).right,
        preHidden: pre.scrollWidth - pre.clientWidth,
        preRight: box(pre).right,
        scrollerRight: box(scroller).right,
        tableWider: scroller.scrollWidth > scroller.clientWidth,
        imageLoaded: image.complete && image.naturalWidth,
        imageRight: box(image).right,
    };
}"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 800])
def test_a_digest_with_a_wide_table_long_code_and_a_large_image_fits_the_screen(world, request, width):
    html = digest_html(
        world,
        "A wide table, a long line of code and a 2000 px image: what used to push the page sideways.[^1]\n\n"
        + WIDE
        + "\nAnd some code:\n\n"
        + LONG_CODE
        + "\n"
        + LARGE_IMAGE
        + "\n[^1]: Footnotes are a plain list in email.\n",
        PROSE,
    )
    # The browser starts once the digest is sent: Playwright's event loop and the ORM do not mix.
    page = request.getfixturevalue("chromium").new_page(viewport={"width": width, "height": 900})
    image = png(2000, 800)
    page.route("https://img.example.com/**", lambda route: route.fulfill(body=image, content_type="image/png"))
    page.set_content(html, wait_until="load")
    figures = page.evaluate(MEASURE)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"digest-{width}.png"), full_page=True)

    assert figures["mode"] == "CSS1Compat"  # the doctype survived: standards mode, not quirks
    assert figures["imageLoaded"] == 2000
    # Nothing scrolls the page sideways, and nothing sticks out of the card.
    assert figures["page"] <= figures["viewport"], figures
    for part in ("preRight", "scrollerRight", "imageRight"):
        assert figures[part] <= figures["cardRight"], (part, figures)
    # The code wraps instead of hiding its end in a scroll area.
    assert figures["preHidden"] <= 0, figures
    # The 7-column table fits even a phone: its columns wrap (a client without overflow
    # could not scroll its box).
    assert not figures["tableWider"], figures


# ------------------------------------------------------------- clients that drop a property

LONG_URL = "https://docs.example.com/" + "/".join(f"section-{n}" for n in range(30)) + "?utm_source=digest&ref=x"
# The declarations a client without that property drops. overflow-wrap is not overflow: it
# is the fallback that must still hold when overflow is gone.
DROPPED = {
    "nothing": None,
    "word-break": re.compile(r"^word-break$"),
    "white-space": re.compile(r"^white-space$"),
    "overflow": re.compile(r"^overflow(-x|-y)?$"),
}


def without(html: str, dropped: re.Pattern | None) -> str:
    """The HTML with every inline declaration of a property removed, as a client without it reads it."""
    if dropped is None:
        return html

    def keep(match: re.Match) -> str:
        declarations = [d for d in match.group(1).split(";") if not dropped.match(d.partition(":")[0].strip())]
        return f' style="{";".join(declarations)}"'

    return re.sub(r' style="([^"]*)"', keep, html)


@pytest.mark.browser
def test_no_sideways_scroll_at_375_px_when_a_client_drops_word_break_white_space_or_overflow(world, request):
    html = digest_html(
        world,
        f"A long address written out: {LONG_URL}\n\nAnd as a link: <{LONG_URL}>\n\n" + WIDE + "\n" + LONG_CODE,
    )
    assert "break-all" not in html  # identifiers in code are not cut at any letter when a space would do
    browser = request.getfixturevalue("chromium")
    widths = {}
    for name, dropped in DROPPED.items():
        page = browser.new_page(viewport={"width": 375, "height": 900})
        page.set_content(without(html, dropped), wait_until="load")
        widths[name] = page.evaluate("() => document.documentElement.scrollWidth")
        page.close()
    assert widths == dict.fromkeys(DROPPED, 375), widths


# ------------------------------------------------------------- dark mode, and the README's screenshots

DEMO = ROOT / "fixtures" / "demo" / "issues"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
HEBREW = (
    "## מה חדש\n\nשלום לכולם! השבוע: **שלוש** הערות קצרות, ו[קישור](https://example.com/he) אחד.\n\n- ראשון\n- שני\n"
)
STATIC = ROOT / "newsletters" / "static"

COLOURS = """() => {
    const style = (selector) => getComputedStyle(document.querySelector(selector));
    return {
        page: style('body').backgroundColor,
        card: style('table.container').backgroundColor,
        text: style('td.content p[dir=auto]').color,
        title: style('h1.issue-title a').color,
        link: style('td.content li a').color,
        meta: style('p.issue-meta').color,
        footer: style('td.footer').color,
        code: style('pre').backgroundColor,
    };
}"""


def demo_issue(name: str) -> tuple[str, str]:
    """A demo issue's title and Markdown, without its front matter."""
    text = (DEMO / name).read_text().split("---\n", 2)[2]
    title = next(line for line in text.splitlines() if line.startswith("# "))
    return title.removeprefix("# "), text.replace(title + "\n", "", 1)


def phone(request, html: str, *, scheme: str = "light"):
    """A 375 px page showing a digest, its site's static images served from the repository."""
    page = request.getfixturevalue("chromium").new_page(viewport={"width": 375, "height": 560})
    page.emulate_media(color_scheme=scheme)
    page.route(
        "**/static/**", lambda route: route.fulfill(path=str(STATIC / route.request.url.split("/static/", 1)[1]))
    )
    page.set_content(html, wait_until="load")
    return page


def luminance(css: str) -> float:
    """WCAG 2 relative luminance of a computed rgb() colour."""
    channels = [int(part) / 255 for part in re.findall(r"\d+", css)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.browser
def test_dark_mode_is_dark_and_readable_where_prefers_color_scheme_is_honoured(world, request):
    (title_a, body_a), (title_b, body_b) = demo_issue("03-tip-indexes.md"), demo_issue("01-welcome.md")
    html = digest_html(world, body_a, body_b, titles=[title_a, title_b])
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html  # premailer left it in the <style> block
    seen = {}
    for scheme in ("light", "dark"):
        page = phone(request, html, scheme=scheme)
        assert page.evaluate("() => document.querySelector('img[src*=demo-chart]').naturalWidth") > 0
        seen[scheme] = page.evaluate(COLOURS)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"digest-{scheme}-375.png"), full_page=True)
        page.close()
    light, dark = seen["light"], seen["dark"]
    assert light["card"] == "rgb(255, 255, 255)" and luminance(light["text"]) < 0.05  # untouched in light
    assert luminance(dark["page"]) < 0.02 and luminance(dark["card"]) < 0.02 and luminance(dark["code"]) < 0.04
    for part in ("text", "title", "link", "meta", "footer"):  # WCAG AA for body text
        assert contrast(dark[part], dark["card"]) >= 4.5, (part, dark)
        assert contrast(light[part], light["card"]) >= 4.5, (part, light)


@pytest.mark.browser
def test_a_right_to_left_digest_at_375_px(world, request):
    Newsletter.objects.filter(pk=world.newsletter.pk).update(
        name="הערות השבוע", language="he", postal_address="רחוב הרצל 1, תל אביב"
    )
    page = phone(request, digest_html(world, HEBREW, titles=["גיליון ראשון"]))
    align = page.evaluate("() => getComputedStyle(document.querySelector('td.content p[dir=auto]')).direction")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "digest-rtl-375.png"), full_page=True)
    assert align == "rtl" and page.evaluate("() => document.documentElement.scrollWidth") == 375


# ------------------------------------------------------------- every template, branded

THEMES = email_themes()


def wordmark() -> bytes:
    """A 400 × 96 logo: the newsletter's name in white on its accent."""
    image = Image.new("RGB", (400, 96), "#8a3ffc")
    ImageDraw.Draw(image).text(
        (200, 48), "Weekly Notes", fill="white", font=ImageFont.load_default(size=44), anchor="mm"
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


LOGO = wordmark()
BRAND_HEADER = "This week's digest is brought to you by **our readers**: [support us](https://example.com/support)."
BRAND_FOOTER = "Written in Berlin by the editors of [Example Press](https://example.com/about)."


def branded(newsletter: Newsletter, theme: str) -> None:
    """Give the newsletter a logo, an accent, a header and a footer, and choose a template."""
    newsletter.template = theme
    newsletter.accent_color = "#8a3ffc"
    newsletter.header_text, newsletter.footer_text = BRAND_HEADER, BRAND_FOOTER
    newsletter.postal_address = "Example Press GmbH, Torstraße 1, 10119 Berlin"
    newsletter.logo.save("logo.png", ContentFile(LOGO), save=False)
    newsletter.save()


@pytest.mark.parametrize("theme", THEMES)
def test_every_template_branded_passes_doiuse_email(world, tmp_path, theme):
    branded(world.newsletter, theme)
    html = digest_html(world, PROSE, "A second issue.\n\n### Smaller heading\n\n1. first\n2. second\n")
    assert 'class="logo"' in html and "our readers" in html
    report = {family: doiuse(html, family, tmp_path) for family in FAMILIES}
    print(f"\nTemplate {theme or 'default'}, branded:", json.dumps(report, indent=1))
    assert report == LAYOUT_FINDINGS


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 800])
@pytest.mark.parametrize("theme", THEMES)
def test_every_template_branded_fits_the_screen(world, request, theme, width):
    branded(world.newsletter, theme)
    html = digest_html(
        world,
        "A wide table, a long line of code and a 2000 px image.\n\n" + WIDE + "\n" + LONG_CODE + "\n" + LARGE_IMAGE,
        PROSE,
    )
    page = request.getfixturevalue("chromium").new_page(viewport={"width": width, "height": 900})
    image = png(2000, 800)
    page.route("https://img.example.com/**", lambda route: route.fulfill(body=image, content_type="image/png"))
    page.route("**/media/logos/**", lambda route: route.fulfill(body=LOGO, content_type="image/png"))
    page.set_content(html, wait_until="load")
    figures = page.evaluate(MEASURE)
    logo = page.evaluate(
        "() => { const i = document.querySelector('img.logo'); return [i.naturalWidth, i.getBoundingClientRect().width]; }"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"template-{theme or 'default'}-{width}.png"), full_page=True)
    assert figures["mode"] == "CSS1Compat"
    assert figures["page"] <= figures["viewport"], figures
    for part in ("preRight", "scrollerRight", "imageRight"):
        assert figures[part] <= figures["cardRight"], (part, figures)
    assert not figures["tableWider"], figures
    assert logo == [400, 200]  # loaded, drawn at its width attribute
