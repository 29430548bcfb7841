"""Gmail's clip: keep every digest's HTML part under 100,000 bytes, footer included.

Gmail shows only the first ~102 KB of a message's HTML and hides the rest behind "View
entire message": the unsubscribe link and the postal address in the footer with it. So a
digest whose HTML would pass BUDGET is rendered again with its later issues shortened to
their opening and a "Read the rest online" link, the last issue first, until it fits; if
the openings alone still do not fit, the last issues keep only their title and link.
The footer is part of the layout, never cut. The plain-text part is cut alike (digest.rendering).
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
    a shortened one gets "cut": True, for the template's "Read the rest online" link.
    Each render runs premailer over the whole digest, so the entries to shorten are chosen
    by an estimate of what each saves, and rendered once per round rather than once per
    entry. Once it fits, a later issue shortened on the way but not needed (the one that
    made the difference was a long earlier one) is given back whole.
    """
    document = render()
    uncut = size = html_bytes(document)
    if size <= BUDGET:
        return document, 0
    # Bytes of the inlined document per byte of an issue's HTML. The layout's own bytes are
    # counted in, so each saving is overestimated: cutting errs short (another round), and
    # giving back errs towards keeping a cut.
    ratio = size / max(1, sum(html_bytes(entry["html"]) for entry in entries))
    cuts: list[tuple[dict, str, float]] = []  # (entry, its html before, estimated bytes saved)
    for shorten in (opening, _title_only):
        candidates = list(reversed(entries))
        while size > BUDGET and candidates:
            estimate = size
            while candidates and estimate > BUDGET:
                entry = candidates.pop(0)
                shorter = shorten(entry["html"])
                if shorter == entry["html"]:
                    continue
                saved = (html_bytes(entry["html"]) - html_bytes(shorter)) * ratio
                cuts.append((entry, entry["html"], saved))
                entry["html"], entry["cut"] = shorter, True
                estimate -= saved
            document = render()
            size = html_bytes(document)
        if size <= BUDGET:
            return (_give_back(render, document, cuts) if shorten is opening else document), uncut
    return document, uncut


def _title_only(safe_html: str) -> str:
    return ""


def _give_back(render: Callable[[], str], document: str, cuts: list[tuple[dict, str, float]]) -> str:
    """Make whole again the shortened entries that still fit, earliest in the digest first."""
    size = html_bytes(document)
    restored = []
    for entry, whole, saved in reversed(cuts):  # cut from the last entry on: earliest first now
        if size + saved <= BUDGET:
            entry["html"], entry["cut"] = whole, False
            size += saved
            restored.append((entry, whole))
    if not restored:
        return document
    document = render()
    while html_bytes(document) > BUDGET and restored:  # the estimates fell short: shorten again
        entry, whole = restored.pop()
        entry["html"], entry["cut"] = opening(whole), True
        document = render()
    return document
