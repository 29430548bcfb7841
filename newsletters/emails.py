"""The HTML of every mail to readers: one layout (emails/base.html), its CSS inlined.

Digests (digest.rendering.content), confirmation and welcome mails extend the same table skeleton
and stylesheet, and go through the same inliner, so they look alike in every client.

Each template is looked up per newsletter: emails/<slug>/NAME (an operator's override for one
newsletter), then emails/themes/<its template>/NAME (a template chosen in the admin), then
emails/NAME. Mails extend `layout`, the first base.html found the same way.
"""

import logging
import re
from pathlib import Path

from django.template import engines
from django.template.loader import render_to_string, select_template
from django.template.utils import get_app_template_dirs
from premailer import Premailer

from newsletters.conf import site_url

# Inbox previews show the preheader, then whatever text follows it in the body: these
# invisible characters (zero-width non-joiner and no-break space pairs) fill the preview.
PREHEADER_FILLER = "&zwnj;&nbsp;" * 90
PREHEADER_LENGTH = 140
# The width of an issue's column: emails/base.css's 640 px card less its 24 px padding each side.
EMAIL_COLUMN_WIDTH = 592


def inline_css(document: str) -> str:
    """Inline the stylesheet into style attributes; keep @media rules in a <style> block.

    premailer serializes the <html> element alone and loses the doctype, which puts mail
    clients in quirks mode (table cells lose the body's line height): it is put back.
    """
    inlined = Premailer(
        document,
        base_url=site_url("/"),
        strip_important=False,
        keep_style_tags=False,
        disable_leftover_css=False,
        allow_network=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        preserve_internal_links=True,
        # CSS `height: auto` (images scale with their width) would become height="auto",
        # which is not a valid attribute value; the style attribute says it.
        disable_basic_attributes=["height"],
    ).transform()
    if inlined.lstrip()[:9].lower() != "<!doctype":
        inlined = "<!doctype html>\n" + inlined
    return _STYLE.sub(lambda match: _SEPARATORS.sub(r"\1", match.group()), inlined)


# premailer writes "a:1; b:2" and font lists as "Menlo, Consolas": the spaces are a few
# percent of a long digest's bytes, repeated on every element (Gmail clips at about 102 KB).
_STYLE = re.compile(r' style="[^"]*"')
_SEPARATORS = re.compile(r"([;,]) ")


# The templates a newsletter may choose: emails/themes/<name>/base.html on any template path.
THEMES_DIR = "emails/themes"
DEFAULT_THEME = ""


def template_dirs() -> list[Path]:
    """The folders templates are loaded from: the project's DIRS, then the apps'."""
    return [Path(folder) for folder in engines["django"].engine.dirs] + list(get_app_template_dirs("templates"))


def email_themes() -> list[str]:
    """The templates found on disk, by name, the default ("") first."""
    names = {
        base.parent.name for folder in template_dirs() for base in sorted((folder / THEMES_DIR).glob("*/base.html"))
    }
    return [DEFAULT_THEME, *sorted(names)]


def theme_choices() -> list[tuple[str, str]]:
    """A newsletter's choice of template (the model field's choices, read from disk)."""
    return [(name, name.replace("-", " ").capitalize() if name else "Default") for name in email_themes()]


def email_templates(name: str, newsletter=None) -> list[str]:
    """Where a mail's template is looked for, first match wins: the newsletter's own, its theme's, the default."""
    names = []
    if newsletter is not None:
        names.append(f"emails/{newsletter.slug}/{name}")
        if newsletter.template:
            names.append(f"{THEMES_DIR}/{newsletter.template}/{name}")
    names.append(f"emails/{name}")
    return names


def email_text(template_name: str, context: dict, *, newsletter=None) -> str:
    """Render a mail's subject or text template, looked up for the newsletter."""
    return render_to_string(email_templates(template_name, newsletter), context)


def email_html(template_name: str, context: dict, *, newsletter=None) -> str:
    """Render a mail's HTML template (one extending `layout`, its base.html) with its CSS inlined."""
    context = {
        "preheader_filler": PREHEADER_FILLER,
        "layout": select_template(email_templates("base.html", newsletter)),
        **context,
    }
    return inline_css(render_to_string(email_templates(template_name, newsletter), context))


def image_width_for_outlook(image) -> None:
    """Give an image a width attribute Outlook for Windows honours (it ignores max-width).

    An editor's pixel width is kept, at most the column's (its height then follows the width
    elsewhere, so it is dropped). An image without one gets the column's width for Outlook,
    and the class "fluid": emails/base.css's @media rule, which Outlook for Windows ignores,
    draws it at its own size (up to the column) in every client that reads a <style>.
    """
    width = image.get("width", "")
    if not width:
        image.set("width", str(EMAIL_COLUMN_WIDTH))
        image.set("class", "fluid")
    elif width.isdigit() and int(width) > EMAIL_COLUMN_WIDTH:
        image.set("width", str(EMAIL_COLUMN_WIDTH))
        image.attrib.pop("height", None)
