"""Markdown → safe HTML, and safe HTML → readable plain text. The one place markup is trusted.

Python-Markdown passes raw HTML through and keeps `[x](javascript:…)` as a live link, so
its output is never trusted: elements whose content is code (script, style, …) are
removed with their content (lxml), then bleach keeps only an explicit allowlist of
tags, attributes and URL protocols.

Its cost is bounded too, since editors' text is rendered on public pages and in every
digest: Python-Markdown's link and HTML patterns rescan the rest of a paragraph at each
opening bracket (18 KB of `[` took minutes) and it recurses once per list level (250 levels
broke the page). `markup_check` refuses such text in one linear pass, naming the line, and
every render stops with MarkupError past NEWSLETTERS_MARKDOWN_BUDGET_MS. Callers catch
MarkupError: forms show it to the editor, pages show an error box, the feed skips the issue.
"""

import re
import time
from functools import lru_cache

import bleach
import markdown
from lxml import etree
from lxml import html as lxml_html

from newsletters.conf import newsletters_settings
from newsletters.emails import image_width_for_outlook
from newsletters.exceptions import MarkupError
from newsletters.validators import LANGUAGE_TAG

MARKDOWN_EXTENSIONS = ["tables", "fenced_code", "footnotes", "sane_lists", "attr_list"]
MARKDOWN_CONFIG = {"tables": {"use_align_attribute": True}}

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s",
        "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title", "rel", "class", "id"],
    "abbr": ["title"],
    "img": ["src", "alt", "title", "width", "height"],
    "code": ["class"],
    "div": ["class"],
    "li": ["id"],
    "sup": ["id"],
    "th": ["align", "colspan", "rowspan"],
    "td": ["align", "colspan", "rowspan"],
    "ol": ["start"],
}
# Direction and language on any block or span, so right-to-left and mixed-language text
# renders as written (values checked in _attribute_allowed).
_TEXT_DIRECTION_TAGS = (
    "blockquote", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ol", "p", "span", "table", "td", "th", "ul",
)  # fmt: skip
for _tag in _TEXT_DIRECTION_TAGS:
    ALLOWED_ATTRIBUTES[_tag] = [*ALLOWED_ATTRIBUTES.get(_tag, []), "dir", "lang"]
_DIRECTIONS = frozenset({"ltr", "rtl", "auto"})
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
# Besides the protocol check, a URL must be absolute with an allowed scheme, site-relative
# or a fragment: "java  script:…" and other scheme look-alikes are dropped, not kept as paths.
# "//host/x" and "/\\host/x" are not site-relative: browsers read both as another host.
_URL_SHAPE = re.compile(r"^(?:https?://|mailto:|/(?![/\\])|#)", re.IGNORECASE)
# Browsers drop tabs and line breaks anywhere in a URL before reading it.
_URL_IGNORED = re.compile(r"[\t\n\r]")


def url_allowed(value: str) -> bool:
    """Whether the sanitizer keeps this link or image address."""
    return bool(_URL_SHAPE.match(_URL_IGNORED.sub("", value.strip())))


def _attribute_allowed(tag: str, name: str, value: str) -> bool:
    if name not in ALLOWED_ATTRIBUTES.get(tag, ()):
        return False
    if name in ("href", "src"):
        return url_allowed(value)
    if name == "dir":
        return value.lower() in _DIRECTIONS
    if name == "lang":
        return bool(LANGUAGE_TAG.match(value))
    return True


# Elements whose text is code or chrome, never prose: removed with everything inside.
_DROP_WITH_CONTENT = (
    "script", "style", "iframe", "object", "embed", "noscript", "template", "textarea",
    "select", "title", "head", "frameset", "frame", "applet", "noembed", "noframes", "xmp",
)  # fmt: skip
LINK_REL = "noopener noreferrer"


# Leading white space of a line outside code fences (16 levels of nested lists), and quote
# markers: Python-Markdown recurses per level.
MAX_INDENT = 64
MAX_QUOTES = 16
# Python-Markdown scans from an opening bracket to its closing one, or to the end of the block
# when there is none: the sum of those distances over the text, about 1 s of it at worst. An
# ordinary issue stays far under it; a list item or heading starts a new block.
MAX_BRACKET_COST = 2_000_000
# Past this the cost is in sheer size (the sanitizer reads about 100 KB a second).
MAX_SOURCE_CHARS = 500_000
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BLOCK_START = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)]|#{1,6})\s")
_QUOTES = re.compile(r"^(?:[ \t]*>)+")
_BRACKETS = re.compile(r"[\[\]<>()]")
_OPENING = {"]": "[", ">": "<", ")": "("}


def markup_check(source: str, *, first_line: int = 1) -> None:
    """Refuse Markdown whose rendering would cost too much (raise MarkupError naming the line); one linear pass.

    `first_line` is the number of the source's first line in its file, for the error.
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise MarkupError(f"The text is {len(source):,} characters long; at most {MAX_SOURCE_CHARS:,} are rendered.")
    fence = ""
    block: list[str] = []
    block_start, cost = first_line, 0
    for number, line in enumerate([*source.splitlines(), ""], start=first_line):
        opened = _FENCE.match(line)
        if fence:
            fence = "" if opened and opened.group(1).startswith(fence) else fence
            continue
        if opened:
            fence = opened.group(1)
            continue
        if not line.strip() or _BLOCK_START.match(line):
            cost += _bracket_cost("\n".join(block))
            if cost > MAX_BRACKET_COST:
                raise MarkupError(
                    f"From line {block_start}: too many “[”, “<” or “(” without their closing pair for the "
                    "text to be rendered in reasonable time. Close them, or write them as \\[, &lt; and \\(."
                )
            block, block_start = [], number
        stripped = line.lstrip(" \t")
        indent = len(line[: len(line) - len(stripped)].expandtabs(4))
        if indent > MAX_INDENT:
            raise MarkupError(
                f"Line {number} is indented {indent} columns: lists may be nested at most {MAX_INDENT // 4} deep."
            )
        quotes = _QUOTES.match(line)
        if quotes and quotes.group().count(">") > MAX_QUOTES:
            raise MarkupError(f"Line {number}: quotes may be nested at most {MAX_QUOTES} deep.")
        block.append(line)


def _bracket_cost(text: str) -> int:
    """Sum the distances from each opening bracket to its closing one, or to the end of the text."""
    open_at: dict[str, list[int]] = {"[": [], "<": [], "(": []}
    cost = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in open_at:
            open_at[char].append(match.start())
        elif stack := open_at[_OPENING[char]]:
            cost += match.start() - stack.pop()
    return cost + sum(len(text) - at for stack in open_at.values() for at in stack)


def markdown_to_html(source: str) -> str:
    """Convert editor Markdown to HTML that is safe to show on a page or in an email.

    Raises MarkupError for text markup_check refuses or whose render passes its budget.
    Cached by source text, refusals too: a digest run renders the same issue into many
    groups, and a page asked for again costs nothing.
    """
    html, error = _rendered(source or "")
    if error:
        raise MarkupError(error)
    return html


@lru_cache(maxsize=256)
def _rendered(source: str) -> tuple[str, str]:
    try:
        return sanitize_html(markdown_unsanitized(source)), ""
    except MarkupError as error:
        return "", str(error)
    except RecursionError:
        return "", "The text is nested too deeply to be rendered (lists, quotes or HTML elements)."


@lru_cache(maxsize=64)
def markdown_unsanitized(source: str) -> str:
    """Return Python-Markdown's own output, unsafe (for seeing what the sanitizer drops), at bounded cost.

    Raises MarkupError for text markup_check refuses, or once NEWSLETTERS_MARKDOWN_BUDGET_MS
    has passed (refusals are not cached). Cached by source: the live preview's render and
    its warnings read the same text.
    """
    markup_check(source)
    budget = newsletters_settings.MARKDOWN_BUDGET_MS
    deadline = time.monotonic() + budget / 1000
    converter = markdown.Markdown(extensions=MARKDOWN_EXTENSIONS, extension_configs=MARKDOWN_CONFIG)

    def checked(handle):
        def handle_match(*args):
            if time.monotonic() > deadline:
                raise MarkupError(
                    f"The text took more than {budget} ms to render; split it into shorter paragraphs "
                    "or remove runs of brackets and emphasis marks."
                )
            return handle(*args)

        return handle_match

    # Every inline pattern, where the superlinear work is, checks the clock on each match.
    for pattern in converter.inlinePatterns:
        pattern.handleMatch = checked(pattern.handleMatch)
    return converter.convert(source)


def sanitize_html(raw: str) -> str:
    """Remove code-bearing elements with their content, then keep only the allowlist."""
    if not raw.strip():
        return ""
    wrapper = lxml_html.fragment_fromstring(raw, create_parent="div")
    for element in list(wrapper.iter(*_DROP_WITH_CONTENT)):
        element.drop_tree()
    for link in wrapper.iter("a"):
        link.set("rel", LINK_REL)
    serialized = etree.tostring(wrapper, encoding=str, method="html")
    inner = serialized[len("<div>") : -len("</div>")]
    return bleach.clean(
        inner,
        tags=ALLOWED_TAGS,
        attributes=_attribute_allowed,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=True,
    )


BLOCK_TAGS = frozenset(
    {"p", "div", "pre", "blockquote", "ul", "ol", "table", "dl", "hr", "h1", "h2", "h3", "h4", "h5", "h6"}
)
SPACES = re.compile(r"[ \t\r\n]+")


@lru_cache(maxsize=256)
def html_for_email(safe_html: str) -> str:
    """Adapt sanitized HTML to mail clients; the web archive keeps markdown_to_html's output.

    Footnote markers stay plain superscript numbers and the notes a numbered list: Gmail,
    Outlook mobile, Yahoo mobile and Samsung Mail drop in-page anchors, so links to them
    lead nowhere (and two issues in one digest would share the ids). A table goes in a box
    that scrolls sideways on a narrow screen, so the page itself never does. Blocks get
    dir="auto" and images an empty alt when they have none.
    """
    if not safe_html.strip():
        return ""
    wrapper = lxml_html.fragment_fromstring(safe_html, create_parent="div")
    for link in list(wrapper.iter("a")):
        if link.get("class") == "footnote-ref":
            link.drop_tag()
        elif link.get("class") == "footnote-backref":
            link.drop_tree()
    for element in wrapper.iter("sup", "li"):
        element.attrib.pop("id", None)
    # Each block takes its direction from its own first strong character: a Hebrew or Arabic
    # paragraph is right-aligned with its punctuation in place, in any newsletter.
    for element in wrapper.iter("p", "h1", "h2", "h3", "h4", "h5", "h6", "li"):
        if element.get("dir") is None:
            element.set("dir", "auto")
    for image in wrapper.iter("img"):
        if image.get("alt") is None:
            image.set("alt", "")  # decorative unless described: never the file name read aloud
        image_width_for_outlook(image)
    for table in list(wrapper.iter("table")):
        table.set("width", "100%")  # Outlook for Windows sizes tables by the attribute, not CSS
        box = etree.Element("div", {"class": "table-scroll"})
        table.addprevious(box)
        box.append(table)  # moves the table, with its tail, into the box
        box.tail, table.tail = table.tail, None
    serialized = etree.tostring(wrapper, encoding=str, method="html")
    return serialized[len("<div>") : -len("</div>")]


def html_excerpt(safe_html: str, *, length: int) -> str:
    """The first words of sanitized HTML as one line of text, at most `length` characters."""
    if not safe_html.strip():
        return ""
    text = SPACES.sub(" ", lxml_html.fragment_fromstring(safe_html, create_parent="div").text_content()).strip()
    if len(text) <= length:
        return text
    cut = text[: length - 1].rsplit(" ", 1)[0] if " " in text[: length - 1] else text[: length - 1]
    return cut.rstrip(" ,;:.") + "…"
