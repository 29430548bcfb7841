"""Digests in each reader's language: one group per window and language, right to left in Arabic."""

from unittest import mock

import lxml.html
import pytest
from premailer import Premailer

from digest.models import Rendering
from newsletters.models import Subscriber
from tests.digest.conftest import at, body

pytestmark = pytest.mark.django_db


def _speaks(subscription, language: str) -> None:
    Subscriber.objects.filter(pk=subscription.subscriber_id).update(language=language)


def test_a_french_reader_gets_french_words_where_english_readers_of_the_same_issue_get_english(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", since=at(2026, 6, 1))
    _speaks(world.subscribe("marie@example.com", since=at(2026, 6, 1)), "fr")
    _speaks(world.subscribe("luc@example.com", since=at(2026, 6, 1)), "fr")
    world.publish("Issue one", at(2026, 6, 1, 12, 0), body="The same words for everyone.")
    world.publish("Issue two", at(2026, 6, 1, 13, 0))
    with mock.patch.object(Premailer, "transform", autospec=True, side_effect=Premailer.transform) as spy:
        summary = world.run(at(2026, 6, 2, 8, 5))
    # One window, two languages: two groups, each rendered (and inlined) once.
    assert (summary.sent, summary.groups_rendered, spy.call_count) == (4, 2, 2)
    assert sorted(Rendering.objects.values_list("language", flat=True)) == ["en", "fr"]

    [english], [french] = world.inbox("ada@example.com"), world.inbox("marie@example.com")
    assert english["Subject"] == "Weekly Notes: 2 new issues (1 Jun – 2 Jun 2026)"
    assert french["Subject"] == "Weekly Notes : 2 nouveaux numéros (1 juin – 2 juin 2026)"
    text = body(french, "plain")
    assert text.startswith("Bonjour Marie,\n")
    assert "2 nouveaux numéros de Weekly Notes :" in text
    assert "1 juin 2026 · Lire en ligne :" in text
    assert "Vous recevez Weekly Notes à l’adresse marie@example.com." in text
    assert "The same words for everyone." in text  # the issue itself is as its editor wrote it
    html = lxml.html.fromstring(body(french, "html"))
    assert (html.get("lang"), html.get("dir")) == ("fr", "ltr")
    assert {cell.get("lang") for cell in html.find_class("content")} == {"en-us"}
    assert "Se désabonner" in html.find_class("footer")[0].text_content()
    assert body(english, "plain").startswith("Hi Ada,\n")
    assert "You receive Weekly Notes at ada@example.com." in body(english, "plain")
    assert body(world.inbox("luc@example.com")[0], "plain").startswith("Bonjour Luc,\n")


def test_an_arabic_digest_is_right_to_left_and_its_greeting_sits_on_the_right(world, request):
    _speaks(world.subscribe("layla@example.com", since=at(2026, 6, 1)), "ar")
    world.publish("Issue one", at(2026, 6, 1, 12, 0), body="Words.")
    world.run(at(2026, 6, 2, 8, 5))
    [message] = world.inbox("layla@example.com")
    html = body(message, "html")
    tree = lxml.html.fromstring(html)
    assert (tree.get("lang"), tree.get("dir"), tree.body.get("dir")) == ("ar", "rtl", "rtl")
    assert body(message, "plain").startswith("مرحبًا Layla،\n")

    # Chromium starts once the database work is done: Playwright runs an event loop in this thread.
    page = request.getfixturevalue("chromium").new_page(viewport={"width": 800, "height": 900})
    page.set_content(html)
    # The greeting is a short line in a cell that spans the card: in a right-to-left layout it
    # starts at the card's right edge and ends far from its left one.
    card = page.locator(".container").bounding_box()
    line = page.evaluate(
        """() => { const range = document.createRange();
                   range.selectNodeContents(document.querySelector('.greeting p'));
                   const boxes = [...range.getClientRects()];
                   const top = Math.min(...boxes.map(b => b.top));
                   const line = boxes.filter(b => b.top < top + 4);  // its bidi runs on the first line
                   return {left: Math.min(...line.map(b => b.left)), right: Math.max(...line.map(b => b.right))}; }"""
    )
    card_right = card["x"] + card["width"]
    assert card_right - line["right"] < 40  # the cell's padding (24 px) and no more
    assert line["left"] - card["x"] > 100
    page.close()


def test_a_magazine_newsletters_branded_digest_is_in_each_readers_language(world):
    world.newsletter.template = "magazine"
    world.newsletter.header_text = "Brought to you by **Acme**."
    world.newsletter.footer_text = "Written in Berlin."
    world.newsletter.accent_color = "#b03060"  # dark enough for text on white: the band's colour too
    world.newsletter.save()
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    _speaks(world.subscribe("marie@example.com", since=at(2026, 6, 1)), "fr")
    world.publish("Issue one", at(2026, 6, 1, 12, 0))
    world.publish("Issue two", at(2026, 6, 1, 13, 0))
    world.run(at(2026, 6, 2, 8, 5))
    [english], [french] = world.inbox("ada@example.com"), world.inbox("marie@example.com")
    page = lxml.html.fromstring(body(french, "html"))
    # The theme's contents box and the newsletter's own header and footer, around French words.
    assert page.find_class("contents")[0].text_content().split()[:3] == ["Dans", "ce", "récapitulatif"]
    assert "In this digest" in lxml.html.fromstring(body(english, "html")).find_class("contents")[0].text_content()
    [masthead] = page.find_class("masthead")
    assert masthead.text_content().strip() == "Weekly Notes"
    style = dict(rule.split(":", 1) for rule in masthead.get("style").split(";") if rule)
    assert (style["background-color"], style["color"]) == ("#b03060", "#fff")  # white on the accent, readable
    [header] = page.find_class("brand-header")
    assert header.text_content().strip() == "Brought to you by Acme." and header.get("lang") == "en-us"
    assert "Written in Berlin." in page.find_class("footer")[0].text_content()
    assert "Se désabonner" in page.find_class("footer")[0].text_content()
    text = body(french, "plain")
    assert text.startswith("Bonjour Marie,\n\nBrought to you by *Acme*.\n\n2 nouveaux numéros de Weekly Notes :")
    assert "Se désabonner :" in text and "Written in Berlin." in text
