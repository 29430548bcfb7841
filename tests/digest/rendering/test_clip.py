"""Gmail's clip: a digest's HTML part stays under 100,000 bytes, and its footer stays in it."""

import re

import pytest

from digest.rendering.clip import BUDGET, CLIP_BYTES, clip_fit, opening
from digest.rendering.content import digest_render
from newsletters.models import Newsletter
from tests.digest.conftest import at, body

pytestmark = pytest.mark.django_db


def long_issue(size: int, *, topic: str = "release") -> str:
    """Markdown as editors write a long issue: sections of prose, links, lists, code and a table."""
    sections, number = [], 0
    while sum(map(len, sections)) < size:
        number += 1
        sentence = (
            f"This part explains what changed in the {topic}, with a [link to the notes]"
            f"(https://docs.example.com/{topic}/{number}/) and **what to do** about it. "
        )
        sections.append(
            f"## Part {number}: the {topic}\n\n"
            + sentence * 3
            + "\n\n- check the `settings` first\n- then run the *migrations*\n- and read the changelog\n\n"
            '```python\nMAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}\n```\n\n'
            "| Setting | Default |\n|---|---|\n| `TIMEOUT` | 10 |\n| `USE_TLS` | True |\n\n"
        )
    return "".join(sections)[:size]


def test_a_digest_with_a_60_kb_issue_and_three_others_fits_under_gmails_clip_with_its_footer(world, settings):
    settings.SITE_URL = "https://news.example.com"
    Newsletter.objects.filter(pk=world.newsletter.pk).update(postal_address="Notes Ltd, 1 Rue de la Paix, Paris")
    world.subscribe("ada@example.com", name="Ada Lovelace", since=at(2026, 6, 1))
    world.publish("Issue long", at(2026, 6, 2, 9, 0), slug="long", body=long_issue(60_000))
    for hour, name in ((10, "b"), (11, "c"), (12, "d")):
        world.publish(f"Issue {name}", at(2026, 6, 2, hour, 0), slug=name, body=long_issue(3_000, topic=name))
    assert world.run(at(2026, 6, 3, 8, 5)).sent == 1
    (message,) = world.inbox("ada@example.com")
    html = body(message, "html")
    assert len(html.encode()) < CLIP_BYTES
    # The footer: the reader's unsubscribe link, preferences and the postal address.
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    assert unsubscribe in html and "/p/" in html and "Notes Ltd, 1 Rue de la Paix, Paris" in html
    # The long issue is shortened to its opening with a link to the rest; the others are whole.
    assert html.count("Read the rest online") == 1
    assert re.search(r'<a href="https://news.example.com/n/weekly/long/"[^>]*>Read the rest online</a>', html)
    assert "Part 1: the release" in html and "Part 40: the release" not in html
    assert "Part 3: the d" in html
    # The plain-text part says what the HTML part says (alternatives that differ are scored
    # by spam filters): the same opening and the same link to the rest.
    text = body(message, "plain")
    assert "Part 1: the release" in text and "Part 40: the release" not in text and "Part 3: the d" in text
    assert text.count("Read the rest online: https://news.example.com/n/weekly/long/") == 1


def test_later_issues_are_shortened_first(world):
    issues = [
        world.publish(f"Issue {n}", at(2026, 6, 2, 9 + n, 0), slug=f"i{n}", body=long_issue(15_000, topic=f"t{n}"))
        for n in range(4)
    ]
    rendered = digest_render(
        newsletter=world.newsletter, issues=issues, window_start=at(2026, 6, 1), window_end=at(2026, 6, 3)
    )
    assert len(rendered.html.encode()) <= BUDGET < rendered.uncut_bytes
    # The first issues are whole; from some issue on, each ends with the link to the rest.
    whole = [f"Part 12: the t{n}" in rendered.html for n in range(4)]
    assert whole[0] and not whole[-1] and whole == sorted(whole, reverse=True)
    assert rendered.html.count("Read the rest online") == whole.count(False)


def test_a_digest_under_the_clip_is_not_touched(world):
    issue = world.publish("Issue one", at(2026, 6, 2, 9, 0), body=long_issue(5_000))
    rendered = digest_render(
        newsletter=world.newsletter, issues=[issue], window_start=at(2026, 6, 1), window_end=at(2026, 6, 3)
    )
    assert rendered.uncut_bytes == 0 and "Read the rest online" not in rendered.html


def test_an_opening_is_the_first_blocks_or_the_first_words_of_a_huge_one():
    paragraphs = "".join(f"<p>Paragraph {n} " + "words " * 30 + "</p>" for n in range(20))
    assert opening(paragraphs).startswith("<p>Paragraph 0 ") and "Paragraph 5" not in opening(paragraphs)
    huge = "<pre><code>" + "x = 1\n" * 2_000 + "</code></pre><p>after</p>"
    assert opening(huge).startswith("<p>x = 1 x = 1") and len(opening(huge)) < 500


def fake_digest(entries: list[dict], renders: list) -> str:
    """A layout of 5 KB around the entries, inlined at twice their size, as premailer roughly does."""
    renders.append(1)
    return "L" * 5_000 + "".join(entry["html"] * 2 for entry in entries) + "<p>footer</p>"


def paragraphs(count: int, tag: str) -> str:
    return "".join(f"<p>{tag} paragraph {n} " + "words " * 40 + "</p>" for n in range(count))


def test_many_issues_are_cut_in_few_renders_and_keep_only_titles_when_openings_do_not_fit():
    entries = [{"html": paragraphs(20, f"issue{n}")} for n in range(30)]
    renders: list = []
    document, uncut = clip_fit(lambda: fake_digest(entries, renders), entries)
    assert len(document) <= BUDGET < uncut and document.endswith("<p>footer</p>")
    assert len(renders) <= 6  # premailer runs per round, not per issue
    assert entries[0].get("cut") is not True and entries[-1]["cut"] is True
    many = [{"html": paragraphs(3, f"issue{n}")} for n in range(200)]
    document, _ = clip_fit(lambda: fake_digest(many, []), many)
    assert len(document) <= BUDGET and any(entry["html"] == "" for entry in many)  # titles only at the end
    assert many[0]["html"].startswith("<p>issue0 paragraph 0")
