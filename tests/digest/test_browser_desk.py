"""The issue editor's desk in Chromium: the Markdown and the email side by side at 1280 px, tabs
at 375, the preview following the cursor's section, keyboard-only use, images uploaded (button
and drag and drop) and inserted at the cursor, axe-core on the form. Screenshots: 21-…"""

import json
import statistics

import pytest
from django.contrib.auth.models import Group, User

from newsletters.roles import EDITOR
from tests.factories import NewsletterFactory, roles_make
from tests.newsletters import test_browser
from tests.newsletters.imagefiles import diagram_png, photo_jpeg
from tests.newsletters.test_browser import SHOTS
from tests.newsletters.test_browser_signup import serious_in

browser_page = test_browser.browser_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FRAME = "#live-preview iframe"
SECTIONS = 12


def ten_kb_issue() -> str:
    """An issue of about 10 KB: twelve sections of prose, a list and a link each."""
    sentence = "Django 6.1 sends mail through named mailers, and the digest engine uses the bulk one. "
    parts = [
        f"## Section {n}: notes\n\n{sentence * 10}\n\n- one [link](https://example.com/{n})\n- two\n\n"
        for n in range(1, SECTIONS + 1)
    ]
    return "".join(parts)


def editor_logs_in(page, live_server) -> None:
    """An editor (the Editor group, not a superuser) signs in."""
    user = User.objects.create_user("writer", password="writer-password", is_staff=True)
    roles_make()  # a transactional test's flush dropped them
    user.groups.add(Group.objects.get(name=EDITOR))
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("writer")
    page.get_by_label("Password").fill("writer-password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/admin/")


def start_issue(page, live_server, body: str) -> None:
    page.goto(f"{live_server.url}/admin/newsletters/issue/add/")
    page.get_by_label("Newsletter").select_option(label="Django Weekly Notes")
    page.get_by_label("Title").fill("Mailers in Django 6.1")
    page.get_by_label("Body").fill(body)


def heading_top(page, name: str) -> float:
    """Where a heading of the email is in the preview's frame (CSS px from its top)."""
    return page.evaluate(
        """(name) => {
            const doc = document.querySelector('#live-preview iframe').contentDocument;
            const h = Array.from(doc.querySelectorAll('h2')).find((e) => e.textContent.trim() === name);
            return h.getBoundingClientRect().top;
        }""",
        name,
    )


def caret_to(page, text: str) -> None:
    """Put the cursor just after `text` in the Body, as an arrow key press would leave it."""
    body = page.get_by_label("Body")
    body.evaluate(
        "(el, text) => { const at = el.value.indexOf(text) + text.length; el.setSelectionRange(at, at); }", text
    )
    body.press("ArrowRight")


# Seconds from the last keystroke to the preview's frame showing the new text, five times.
LATENCIES = """async () => {
    const body = document.querySelector('textarea[name=body]');
    const frame = document.querySelector('#live-preview iframe');
    const times = [];
    for (let i = 0; i < 5; i++) {
        const shown = new Promise((done) => frame.addEventListener('load', done, { once: true }));
        body.value += ' typed' + i;
        const typed = performance.now();
        body.dispatchEvent(new Event('input', { bubbles: true }));
        await shown;
        if (!frame.contentDocument.body.textContent.includes('typed' + i)) throw new Error('stale preview');
        times.push(performance.now() - typed);
    }
    return times;
}"""


def test_side_by_side_at_1280_follows_the_cursor_and_updates_quickly(browser_page, live_server, settings):
    settings.SITE_URL = live_server.url
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    NewsletterFactory(name="Django Weekly Notes", slug="django-weekly")
    editor_logs_in(page, live_server)
    start_issue(page, live_server, ten_kb_issue())
    frame = page.frame_locator(FRAME)
    frame.get_by_role("heading", name=f"Section {SECTIONS}: notes").wait_for(state="attached")

    # Both on screen at once, the preview to the right of the text, no tabs.
    page.locator("#desk").scroll_into_view_if_needed()
    text_box = page.get_by_label("Body").bounding_box()
    frame_box = page.locator(FRAME).bounding_box()
    assert frame_box["x"] >= text_box["x"] + text_box["width"]
    assert frame_box["width"] > 400 and text_box["width"] > 400
    assert frame_box["y"] < 900 and text_box["y"] < 900
    assert not page.get_by_role("tab", name="Preview").is_visible()

    # The preview follows the section the cursor is in.
    caret_to(page, "## Section 9: notes\n\nDjango")
    page.wait_for_function("() => document.querySelector('#live-preview').dataset.section === '8'")
    assert 0 <= heading_top(page, "Section 9: notes") < 40
    caret_to(page, "## Section 3: notes")
    page.wait_for_function("() => document.querySelector('#live-preview').dataset.section === '2'")
    assert 0 <= heading_top(page, "Section 3: notes") < 40
    page.get_by_label("Body").press("Control+Home")  # on the first heading's line: its section
    page.wait_for_function("() => document.querySelector('#live-preview').dataset.section === '0'")
    assert 0 <= heading_top(page, "Section 1: notes") < 40
    caret_to(page, "## Section 5: notes")
    page.screenshot(path=str(SHOTS / "21-desk-1280.png"))

    # Phone and desktop widths.
    page.get_by_role("button", name="Phone").click()
    assert page.get_by_role("button", name="Phone").get_attribute("aria-pressed") == "true"
    assert page.locator(FRAME).evaluate("(f) => f.contentWindow.innerWidth") == 375
    page.get_by_role("button", name="Desktop").click()
    assert page.locator(FRAME).evaluate("(f) => f.contentWindow.innerWidth") == 680  # scaled to fit

    # After typing stops, the preview shows the new text within 300 ms (on an idle machine).
    times = page.evaluate(LATENCIES)
    body_bytes = len(page.get_by_label("Body").input_value().encode())
    (SHOTS / "21-preview-latency.json").write_text(json.dumps({"body_bytes": body_bytes, "ms": times}))
    print(f"preview update after typing stops, {body_bytes} bytes: median {statistics.median(times):.0f} ms, {times}")
    assert body_bytes >= 10_000
    # The target is 300 ms on an idle machine (150 ms of debounce, about 85 ms of CPU to render);
    # this bound leaves room for a loaded one.
    assert statistics.median(times) < 2000


def test_tabs_at_375_by_keyboard_and_axe_finds_nothing_serious(browser_page, live_server):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 800})
    NewsletterFactory(name="Django Weekly Notes", slug="django-weekly")
    editor_logs_in(page, live_server)
    start_issue(page, live_server, "## What changed\n\nThe `MAILERS` setting.\n\n![](https://example.com/x.png)\n")
    write, preview = page.get_by_role("tab", name="Write"), page.get_by_role("tab", name="Preview")
    assert write.get_attribute("aria-selected") == "true"
    assert page.get_by_label("Body").is_visible() and not page.locator("#live-preview").is_visible()
    page.screenshot(path=str(SHOTS / "21-desk-tabs-write-375.png"))

    write.focus()
    page.keyboard.press("ArrowRight")  # the tab list's keys
    assert preview.get_attribute("aria-selected") == "true"
    assert page.evaluate("() => document.activeElement.id") == "desk-tab-preview"
    assert not page.get_by_label("Body").is_visible()
    page.frame_locator(FRAME).get_by_role("heading", name="What changed").wait_for()
    page.locator(".lp-warnings li", has_text="has no alt text").wait_for()  # warnings stay in the pane
    assert page.get_by_role("button", name="Phone").get_attribute("aria-pressed") == "true"  # a phone's width first
    assert page.locator("#desk-tab-preview").evaluate("(e) => getComputedStyle(e).outlineStyle") != "none"
    page.locator("#desk").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "21-desk-tabs-375.png"))
    assert serious_in(page, "#content") == []
    page.keyboard.press("ArrowLeft")
    assert page.get_by_label("Body").is_visible()
    assert serious_in(page, "#content") == []


def test_images_by_keyboard_and_by_drag_and_drop_go_in_at_the_cursor(browser_page, live_server, settings):
    settings.SITE_URL = live_server.url
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    NewsletterFactory(name="Django Weekly Notes", slug="django-weekly")
    editor_logs_in(page, live_server)
    start_issue(page, live_server, "## First\n\nOpening words.\n\n## Second\n\nClosing words.\n")
    page.frame_locator(FRAME).get_by_role("heading", name="Second").wait_for()

    # Keyboard only: from the Title field, Tab reaches the image tools, then the Body.
    page.get_by_label("Title").focus()
    order = []
    for _ in range(12):
        page.keyboard.press("Tab")
        order.append(page.evaluate("() => document.activeElement.id || document.activeElement.name"))
        if order[-1] == "id_body":
            break
    tools = ["image-file", "image-alt", "image-library-choice", "id_body"]
    assert [name for name in order if name in tools] == tools, order
    assert order.index("image-alt") < order.index("id_body")

    # The cursor after "Opening words.", a file chosen, alt written, Enter: the Markdown goes there.
    caret_to(page, "Opening words.")
    page.get_by_label("Image file").set_input_files(
        files=[{"name": "beach.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg()}]
    )
    page.get_by_label("Alt text (what it shows)").fill("The beach at noon")
    page.get_by_label("Alt text (what it shows)").press("Enter")
    page.locator(".image-status", has_text="Inserted beach.jpg (1200 × 900 px").wait_for()
    text = page.get_by_label("Body").input_value()
    opening = text.index("Opening words.")
    image_at = text.index("![The beach at noon](")
    assert opening < image_at < text.index("## Second")
    assert '{width="592" height="444"}' in text
    image = page.frame_locator(FRAME).get_by_role("img", name="The beach at noon")
    image.wait_for()
    assert image.get_attribute("width") == "592" and image.get_attribute("height") == "444"
    page.wait_for_function(
        "() => { const i = document.querySelector('#live-preview iframe').contentDocument"
        ".querySelector('img[alt=\"The beach at noon\"]'); return i && i.complete && i.naturalWidth === 1200; }"
    )

    # Dropped on the text: the alt text asked for first, then it goes in where it was dropped.
    caret_to(page, "Closing words.")
    drop = page.evaluate_handle(
        """(bytes) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], 'flow.png', { type: 'image/png' }));
            return data;
        }""",
        list(diagram_png()),
    )
    page.get_by_label("Body").dispatch_event("drop", {"dataTransfer": drop})
    alt = page.get_by_label("Alt text (what it shows)")
    page.wait_for_function("() => document.activeElement.id === 'image-alt'")
    alt.fill("How a digest flows")
    alt.press("Enter")
    page.locator(".image-status", has_text="Inserted flow.png (800 × 500 px").wait_for()
    text = page.get_by_label("Body").input_value()
    assert text.index("Closing words.") < text.index("![How a digest flows](")
    page.frame_locator(FRAME).get_by_role("img", name="How a digest flows").wait_for()

    # A bad file: a clear message, nothing inserted.
    page.get_by_label("Image file").set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}]
    )
    alt.fill("Notes")
    page.get_by_role("button", name="Upload and insert").click()
    page.locator(".image-status.error", has_text="notes.png is not an image").wait_for()
    assert page.get_by_label("Body").input_value() == text

    # The library offers both images to insert again.
    assert page.locator("#image-library-choice option").count() == 3
    page.locator("#desk").scroll_into_view_if_needed()
    caret_to(page, "Opening words.")
    page.screenshot(path=str(SHOTS / "21-image-inserted-1280.png"))
    assert serious_in(page, "#content") == []
