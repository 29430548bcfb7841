"""The plain-text part of a mail from sanitized HTML: wrapped at 72, links written out, lists and quotes kept."""

import textwrap
from functools import lru_cache
from urllib.parse import urljoin

from lxml import html as lxml_html

from newsletters.markup import BLOCK_TAGS, SPACES

TEXT_WIDTH = 72  # plain-text mail: lines a reader's client shows whole (RFC 3676 suggests under 78)

_MIN_WIDTH = 20  # deep in nested lists and quotes, wrap no narrower than this


def text_wrap(text: str, *, width: int = TEXT_WIDTH) -> str:
    """Wrap each line of a text at spaces to `width` characters; a longer word (a URL) stays whole on its own line."""
    return "\n".join(
        textwrap.fill(line, width=max(width, _MIN_WIDTH), break_long_words=False, break_on_hyphens=False) or line
        for line in text.split("\n")
    )


@lru_cache(maxsize=256)
def html_to_text(safe_html: str, *, base_url: str = "") -> str:
    """Render sanitized HTML as plain text: underlined headings, bullets, links as `text <url>`.

    Site-relative links and images are made absolute with `base_url`. Prose is wrapped at
    TEXT_WIDTH (list items and quotes within it, their markers included), at spaces only: a
    URL longer than the rest of a line gets a line of its own, never a break. Code and
    table rows keep their lines.
    """
    if not safe_html.strip():
        return ""
    wrapper = lxml_html.fragment_fromstring(safe_html, create_parent="div")
    blocks = _TextRenderer(base_url).blocks(wrapper, width=TEXT_WIDTH)
    return "\n\n".join(block for block in blocks if block.strip()) + "\n"


class _TextRenderer:
    """Walk an lxml tree and produce plain-text blocks."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def url(self, value: str) -> str:
        return urljoin(self.base_url, value) if self.base_url and value.startswith("/") else value

    def blocks(self, element, *, width: int) -> list[str]:
        out: list[str] = []
        inline: list[str] = []

        def flush():
            text = SPACES.sub(" ", "".join(inline)).strip()
            if text:
                out.append(text_wrap(text, width=width))
            inline.clear()

        if element.text:
            inline.append(element.text)
        for child in element:
            if not isinstance(child.tag, str):  # comments
                pass
            elif child.tag in BLOCK_TAGS or child.tag in {"li", "tr", "dt", "dd"}:
                flush()
                out.extend(self.block(child, width=width))
            else:
                inline.append(self.inline(child))
            if child.tail:
                inline.append(child.tail)
        flush()
        return out

    def block(self, element, *, width: int) -> list[str]:
        tag = element.tag
        if tag in {"h1", "h2"}:
            title = self.inline_text(element)
            return [f"{title}\n{('=' if tag == 'h1' else '-') * len(title)}"]
        if tag in {"h3", "h4", "h5", "h6"}:
            return [f"{'#' * int(tag[1])} {self.inline_text(element)}"]
        if tag == "hr":
            return ["-" * 20]
        if tag == "pre":
            code = element.text_content().rstrip("\n")
            return ["\n".join("    " + line for line in code.split("\n"))]
        if tag == "blockquote":
            inner = "\n\n".join(self.blocks(element, width=width - 2))
            return ["\n".join("> " + line if line else ">" for line in inner.split("\n"))]
        if tag in {"ul", "ol"}:
            return [self.list_block(element, width=width)]
        if tag == "table":
            rows = [" | ".join(self.inline_text(cell) for cell in row.iter("th", "td")) for row in element.iter("tr")]
            return ["\n".join(rows)]
        return self.blocks(element, width=width)

    def list_block(self, element, *, width: int) -> str:
        lines = []
        number = int(element.get("start") or 1)
        for item in element.iterchildren("li"):
            marker = f"{number}." if element.tag == "ol" else "-"
            number += 1
            body = "\n".join(self.blocks(item, width=width - len(marker) - 1)) or ""
            first, *rest = body.split("\n") if body else [""]
            lines.append(f"{marker} {first}")
            lines.extend(" " * (len(marker) + 1) + line if line else "" for line in rest)
        return "\n".join(lines)

    def inline_text(self, element) -> str:
        parts = [element.text or ""]
        for child in element:
            if isinstance(child.tag, str):
                parts.append(self.inline(child))
            parts.append(child.tail or "")
        return SPACES.sub(" ", "".join(parts)).strip()

    def inline(self, element) -> str:
        tag = element.tag
        if tag == "br":
            return "\n"
        if tag == "img":
            alt = element.get("alt") or "image"
            return f"[{alt}] <{self.url(element.get('src'))}>" if element.get("src") else f"[{alt}]"
        if tag == "a":
            text = self.inline_text(element)
            href = element.get("href") or ""
            if element.get("class") in {"footnote-ref", "footnote-backref"}:
                return f"[{text}]" if element.get("class") == "footnote-ref" else ""
            if not href or href == text or href == f"mailto:{text}" or href.startswith("#"):
                return text
            return f"{text} <{self.url(href)}>"
        if tag == "code":
            return f"`{self.inline_text(element)}`"
        if tag in {"strong", "b"}:
            return f"*{self.inline_text(element)}*"
        if tag in {"em", "i"}:
            return f"_{self.inline_text(element)}_"
        return self.inline_text(element)
