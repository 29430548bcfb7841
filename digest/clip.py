"""Gmail's clip: keep every digest's HTML part under 100,000 bytes, footer included.

Gmail shows only the first ~102 KB of a message's HTML and hides the rest behind "View
entire message": the unsubscribe link and the postal address in the footer with it. So a
digest whose HTML would pass CLIP_BYTES is rendered again with its later issues shortened
to their opening and a "Read the rest online" link, the last issue first, until it fits;
if the openings alone still do not fit, the last issues keep only their title and link.
The footer is part of the layout, never cut. The plain-text part stays whole.
"""

import html
from collections.abc import Callable

from lxml import etree
from lxml import html as lxml_html

from newsletters.markup import html_excerpt

# Under Gmail's ~102 KB, with room for each reader's values (name, personal links),
# which replace shorter markers after rendering.
CLIP_BYTES = 100_000
PERSONAL_ROOM = 2_000
BUDGET = CLIP_BYTES - PERSONAL_ROOM
# An opening: the first blocks of an issue up to about this much text, within this many bytes.
OPENING_TEXT = 400
OPENING_BYTES = 3_000


def html_bytes(document: str) -> int:
    """The size Gmail counts: the HTML part's bytes, decoded."""
    return len(document.encode("utf-8"))


def opening(safe_html: str) -> str:
    """The first blocks of an issue's HTML: about OPENING_TEXT characters, at most OPENING_BYTES."""
    if not safe_html.strip():
        return ""
    wrapper = lxml_html.fragment_fromstring(safe_html, create_parent="div")
    kept, size, text = [], 0, 0
    for element in wrapper:
        block = etree.tostring(element, encoding=str, method="html", with_tail=False)
        if size + len(block) > OPENING_BYTES:
            break
        kept.append(block)
        size += len(block)
        text += len(element.text_content())
        if text >= OPENING_TEXT:
            break
    if not kept:  # a first block too long to keep (a big table, code): its first words
        return f"<p>{html.escape(html_excerpt(safe_html, length=OPENING_TEXT))}</p>"
    return "\n".join(kept)


def clip_fit(render: Callable[[], str], entries: list[dict]) -> tuple[str, int]:
    """Render, shortening later entries until the HTML fits BUDGET; return it and its size uncut (0: it fit).

    Each entry is a digest entry (its "html" the issue's email HTML, which `render` reads);
    a shortened one gets "cut": True, for the template's "Read the rest online" link. Once
    it fits, a later issue that was shortened on the way but need not be (the one that
    made the difference was a long earlier one) is given back whole.
    """
    document = render()
    uncut = size = html_bytes(document)
    if size <= BUDGET:
        return document, 0
    steps: list[tuple[dict, str, int]] = []  # (entry, its whole html, bytes its opening saved)
    for shorten in (opening, _title_only):
        for entry in reversed(entries):
            shorter = shorten(entry["html"])
            if shorter == entry["html"]:
                continue
            whole = entry["html"]
            entry["html"], entry["cut"] = shorter, True
            document = render()
            steps.append((entry, whole, size - html_bytes(document)))
            size = html_bytes(document)
            if size <= BUDGET:
                return _give_back(render, document, steps, shorten is opening), uncut
    return document, uncut


def _title_only(safe_html: str) -> str:
    return ""


def _give_back(render: Callable[[], str], document: str, steps: list[tuple[dict, str, int]], openings: bool) -> str:
    """Make whole again the entries shortened before the last step, earliest first, while the HTML still fits."""
    if not openings or len(steps) < 2:
        return document  # titles only: every opening was needed
    size = html_bytes(document)
    restored = []
    for entry, whole, saved in reversed(steps[:-1]):  # steps ran from the last entry: earliest first now
        if size + saved <= BUDGET:
            entry["html"], entry["cut"] = whole, False
            size += saved
            restored.append((entry, whole))
    if not restored:
        return document
    document = render()
    while html_bytes(document) > BUDGET and restored:  # the savings did not quite add up: cut again
        entry, whole = restored.pop()
        entry["html"], entry["cut"] = opening(whole), True
        document = render()
    return document
