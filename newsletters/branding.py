"""A newsletter's branding in its mails: logo, accent colour, header and footer blocks.

Every reader mail of a newsletter gets `brand` in its template context (emails/base.html
draws it, emails/brand.css colours it). The header and footer are Markdown, converted and
sanitized like issues (newsletters.markup). The accent colours text only where it reads
(WCAG AA, 4.5:1 on the white card); otherwise it colours rules and buttons alone.
"""

from dataclasses import dataclass

from newsletters.conf import site_url
from newsletters.markup import html_for_email, markdown_to_html
from newsletters.plaintext import html_to_text

# The logo's largest width in a mail, in CSS pixels (a 2x image stays sharp on high-density screens).
LOGO_MAX_WIDTH = 200
# The card's background (emails/base.css), which accent text must contrast with.
CARD = "#ffffff"
READABLE = 4.5


@dataclass(frozen=True)
class Brand:
    """What a mail's templates draw of a newsletter's branding; empty strings where it has none."""

    logo_url: str = ""
    logo_width: int = 0
    logo_height: int = 0
    accent: str = ""
    accent_text: bool = False
    header_html: str = ""
    header_text: str = ""
    footer_html: str = ""
    footer_text: str = ""


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _block(source: str) -> tuple[str, str]:
    """A header or footer block as (HTML for email, plain text); raises MarkupError like an issue's body."""
    if not source.strip():
        return "", ""
    body = markdown_to_html(source)
    return html_for_email(body), html_to_text(body, base_url=site_url()).strip()


def brand_for(newsletter) -> Brand:
    """The branding of a newsletter's mails (None, for a mail about several newsletters: none)."""
    if newsletter is None:
        return Brand()
    logo_url, width, height = "", 0, 0
    if newsletter.logo and newsletter.logo_width and newsletter.logo_height:
        url = newsletter.logo.url
        logo_url = site_url(url) if url.startswith("/") else url
        width = min(newsletter.logo_width, LOGO_MAX_WIDTH)
        height = round(newsletter.logo_height * width / newsletter.logo_width)
    header_html, header_text = _block(newsletter.header_text)
    footer_html, footer_text = _block(newsletter.footer_text)
    accent = newsletter.accent_color.lower()
    return Brand(
        logo_url=logo_url,
        logo_width=width,
        logo_height=height,
        accent=accent,
        accent_text=bool(accent) and contrast(accent, CARD) >= READABLE,
        header_html=header_html,
        header_text=header_text,
        footer_html=footer_html,
        footer_text=footer_text,
    )
