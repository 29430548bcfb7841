"""Rendering: once per group, across runs; what goes in a digest and what holds it."""

import datetime
import re
from unittest import mock

import lxml.html
import pytest
from premailer import Premailer

from digest.exceptions import RenderError
from digest.models import Delivery, Rendering
from digest.rendering.content import digest_render
from newsletters.models import Attachment, Newsletter
from tests.digest.conftest import at, body, style_block_rules
from tests.factories import IssueFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def test_premailer_runs_once_per_group_not_per_subscriber(world):
    for n in range(6):
        world.subscribe(f"d{n}@example.com", frequency="daily", since=at(2026, 6, 1))
    for n in range(4):
        world.subscribe(f"t{n}@example.com", frequency="daily", tz="Asia/Tokyo", since=at(2026, 6, 1))
    world.publish("Issue one", at(2026, 6, 2, 12, 0))
    with mock.patch.object(Premailer, "transform", autospec=True, side_effect=Premailer.transform) as spy:
        summary = world.run(at(2026, 6, 3, 8, 5))
    # UTC readers' window ends 3 June 08:00 UTC, Tokyo readers' 2 June 23:00 UTC: two groups.
    assert summary.sent == 10
    assert summary.groups_rendered == 2
    assert spy.call_count == 2


def test_a_retry_reuses_its_groups_rendering_until_an_issue_changes(world, settings):
    settings.DIGEST_RETRY_BACKOFF = 60
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    world.subscribe("bob@example.com", frequency="daily", since=at(2026, 6, 1))
    issue = world.publish("Issue a", at(2026, 6, 1, 12, 0), body="First wording.")
    world.smtp.handler.replies["ada@example.com"] = "451 4.7.1 Try again later"
    with mock.patch.object(Premailer, "transform", autospec=True, side_effect=Premailer.transform) as spy:
        assert world.run(at(2026, 6, 2, 8, 5)).sent == 1
        del world.smtp.handler.replies["ada@example.com"]
        retry = world.run(at(2026, 6, 2, 8, 7))
        assert (retry.sent, retry.groups_rendered, retry.groups_reused) == (1, 0, 1)
        assert spy.call_count == 1  # the retry sent the rendering the first run made
        assert str(retry).endswith("; 1 groups reused from another run")
    [ada], [bob] = world.inbox("ada@example.com"), world.inbox("bob@example.com")

    def impersonal(message) -> str:  # the digest without the reader's name and links
        return re.sub(r"/[up]/[^/]+/", "/…/", body(message, "html")).replace("Bob", "Ada").replace("bob@", "ada@")

    assert "First wording." in body(ada, "plain")
    assert impersonal(ada) == impersonal(bob)

    # An edit changes the rendering's signature: the next retry renders again.
    world.smtp.handler.replies["cy@example.com"] = "451 4.7.1 Try again later"
    world.subscribe("cy@example.com", frequency="daily", since=at(2026, 6, 1))
    Delivery.objects.all().delete()
    from newsletters.models import Subscription

    Subscription.objects.update(cursor=None, next_due_at=None)
    world.run(at(2026, 6, 2, 8, 9))
    del world.smtp.handler.replies["cy@example.com"]
    issue.body = "Corrected wording."
    issue.save()
    with mock.patch.object(Premailer, "transform", autospec=True, side_effect=Premailer.transform) as spy:
        retry = world.run(at(2026, 6, 2, 8, 11))
    assert (retry.sent, retry.groups_rendered, spy.call_count) == (1, 1, 1)
    assert "Corrected wording." in body(world.inbox("cy@example.com")[0], "plain")
    # Renderings older than a day are cleared by later runs.
    assert Rendering.objects.count() == 1
    world.run(at(2026, 6, 3, 9, 0))
    assert Rendering.objects.count() == 0


def test_oversized_attachments_are_linked_instead(world, settings, tmp_path):
    settings.DIGEST_ATTACHMENT_MAX_BYTES = 10
    settings.SITE_URL = "https://news.example.com"
    world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    issue = world.publish("Issue a", at(2026, 6, 1, 12, 0))
    from django.core.files.base import ContentFile

    Attachment.objects.create(issue=issue, file=ContentFile(b"x" * 11, name="big.zip"))
    world.run(at(2026, 6, 2, 8, 5))
    message = world.inbox("ada@example.com")[0]
    assert list(message.iter_attachments()) == []
    text = body(message, "plain")
    assert "too large to attach" in text
    assert "https://news.example.com/media/attachments/" in text and "big.zip" in text


def test_a_subject_with_a_line_break_holds_the_group_without_blaming_readers(world, settings):
    settings.ADMINS = ["ops@example.com"]
    subscription = world.subscribe("ada@example.com", frequency="daily", since=at(2026, 6, 1))
    issue = world.publish("Issue a", at(2026, 6, 1, 12, 0))
    # U+2028 passes the database's CR/LF check but is a line break to mail software.
    type(issue).objects.filter(pk=issue.pk).update(title="Issue a\u2028Bcc: victim@example.com")
    summary = world.run(at(2026, 6, 2, 8, 5))
    assert (summary.sent, summary.failed, summary.held, summary.groups_rendered) == (0, 0, 1, 0)
    assert world.inbox("ada@example.com") == []
    delivery = Delivery.objects.get()
    assert delivery.status == "deferred" and "line break" in delivery.last_error
    subscription.refresh_from_db()
    assert subscription.cursor is None and subscription.subscriber.consecutive_failures == 0
    (report,) = world.inbox("ops@example.com")
    assert "held" in report["Subject"] and "line break" in report.get_content()


def test_the_subject_is_plain_text_not_html_escaped(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish('Q&A: <tags> & "quotes" aren\'t escaped', at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    assert message["Subject"] == 'Q&A: <tags> & "quotes" aren\'t escaped'
    assert "Q&amp;A" in body(message, "html")  # the HTML part still escapes it


def test_a_newsletter_name_in_a_several_issue_subject_is_not_escaped(world):
    from newsletters.models import Newsletter

    Newsletter.objects.filter(pk=world.newsletter.pk).update(name="Tips & Tricks")
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("One", at(2026, 6, 1, 12, 0))
    world.publish("Two", at(2026, 6, 1, 13, 0))
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    assert message["Subject"].startswith("Tips & Tricks: 2 new issues")


# ------------------------------------------------------------- the email's layout


def _html_tree(message):
    from lxml import html as lxml_html

    return lxml_html.document_fromstring(body(message, "html"))


def _font_size(element) -> int:
    return int(re.search(r"font-size:\s*(\d+)px", element.get("style")).group(1))


def test_the_html_keeps_its_doctype_and_starts_with_the_preheader(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0), body="## Section\n\nThe first words of the issue, then more.")
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    assert body(message, "html").startswith("<!doctype html>")
    tree = _html_tree(message)
    assert tree.get("lang") == "en"  # the shipped language of LANGUAGE_CODE (en-us), the newsletter's default
    assert tree.get("dir") == "ltr"
    preheader = tree.body[0]
    assert preheader.get("class") == "preheader"
    assert preheader.text_content().split("\u200c")[0] == "Section The first words of the issue, then more."
    # Hidden the way filters accept: no zero font size, no text in the background's colour.
    style = preheader.get("style")
    assert style == "display:none;max-height:0;overflow:hidden;mso-hide:all"
    assert "font-size" not in style and "color" not in style
    assert tree.xpath("//meta[@name='color-scheme']/@content") == ["light dark"]
    assert tree.body[1].tag == "table" and tree.body[1].get("role") == "presentation"


def test_an_editor_overrides_the_preheader_and_several_issues_are_named_by_title(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("First", at(2026, 6, 1, 12, 0), preheader="Our own preview line")
    world.publish("Second", at(2026, 6, 1, 13, 0), body="Body words that are not the preview.")
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    preheader = _html_tree(message).body[0].text_content().split("\u200c")[0]
    assert preheader == "Our own preview line · Second"


def test_headings_inside_an_issue_are_smaller_than_its_title(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0), body="# One\n\n## Two\n\n### Three\n\n#### Four\n\ntext")
    world.run(at(2026, 6, 2, 8, 5))
    tree = _html_tree(world.inbox("ada@example.com")[0])
    title = _font_size(tree.find_class("issue-title")[0])
    sizes = [_font_size(tree.xpath(f"//td[@class='content']//{tag}")[0]) for tag in ("h1[2]", "h2", "h3", "h4")]
    assert title == 22 and sizes == sorted(sizes, reverse=True) and max(sizes) < title


def test_the_postal_address_is_in_every_footer(world):
    type(world.newsletter).objects.filter(pk=world.newsletter.pk).update(
        postal_address="Weekly Notes & Co\n1 Rue de la Paix\n75002 Paris, France"
    )
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    assert "Weekly Notes & Co\n1 Rue de la Paix\n75002 Paris, France\n" in body(message, "plain")
    (footer,) = _html_tree(message).find_class("postal-address")
    assert [line.strip() for line in footer.itertext()] == [
        "Weekly Notes & Co",
        "1 Rue de la Paix",
        "75002 Paris, France",
    ]
    assert "Weekly Notes &amp; Co<br>" in body(message, "html")


def test_footnotes_in_email_have_no_dead_links_and_tables_scroll_in_a_box(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    source = "Claim[^a] and another[^b].\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n[^a]: First note.\n[^b]: Second note."
    world.publish("Issue a", at(2026, 6, 1, 12, 0), body=source)
    world.publish("Issue b", at(2026, 6, 1, 13, 0), body=source)
    world.run(at(2026, 6, 2, 8, 5))
    tree = _html_tree(world.inbox("ada@example.com")[0])
    assert tree.xpath("//a[starts-with(@href, '#')]") == [] and tree.xpath("//body//*[@id]") == []
    assert [sup.text_content() for sup in tree.xpath("//sup")] == ["1", "2", "1", "2"]
    notes = tree.find_class("footnote")
    assert [[li.text_content().strip() for li in note.iter("li")] for note in notes] == [
        ["First note.", "Second note."]
    ] * 2
    assert [table.getparent().get("class") for table in tree.xpath("//td[@class='content']//table")] == [
        "table-scroll"
    ] * 2


def test_the_text_part_signs_off_with_the_standard_separator(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    world.publish("Issue a", at(2026, 6, 1, 12, 0))
    world.run(at(2026, 6, 2, 8, 5))
    (message,) = world.inbox("ada@example.com")
    # "-- " (with its space) is what mail clients recognise to fold or strip the footer in replies.
    assert "\n-- \nYou receive Weekly Notes at ada@example.com.\n" in body(message, "plain")


def test_the_html_carries_the_newsletters_language(world):
    Newsletter.objects.filter(pk=world.newsletter.pk).update(language="he")
    world.newsletter.refresh_from_db()
    issue = world.publish("גיליון", at(2026, 6, 1, 12, 0), body="שלום, עולם.")
    rendered = digest_render(
        newsletter=world.newsletter, issues=[issue], window_start=at(2026, 6, 1), window_end=at(2026, 6, 2)
    )
    tree = lxml.html.fromstring(rendered.html)
    # Hebrew is not shipped: the mail's own words are in LANGUAGE_CODE's language, the issue in Hebrew.
    assert tree.get("lang") == "en"
    assert {cell.get("lang") for cell in tree.find_class("content")} == {"he"}
    # The layout's own blocks holding the editors' words take their direction from them too.
    assert tree.find_class("issue-title")[0].get("dir") == tree.find_class("masthead")[0].get("dir") == "auto"
    assert [p.get("dir") for p in tree.find_class("content")[0].iter("p") if "שלום" in p.text_content()] == ["auto"]


@pytest.mark.django_db
def test_an_issue_whose_markdown_is_refused_is_a_render_error_naming_it():
    """Saved before its text was checked (M2): the group is held like any other that cannot render."""
    issue = IssueFactory(title="Bracket bomb", body="[" * 18_000)
    with pytest.raises(RenderError, match="the issue 'Bracket bomb' cannot be rendered: From line 1: too many"):
        digest_render(
            newsletter=issue.newsletter, issues=[issue], window_start=issue.publish_at, window_end=issue.publish_at
        )


def test_narrow_and_old_clients_get_widths_a_font_on_every_cell_and_no_detected_links(world):
    world.subscribe("ada@example.com", since=at(2026, 6, 1))
    source = (
        "Call 555-0100 on 1 June.\n\n![A chart](https://img.example.com/c.png)\n\n| x |\n|---|\n| 1 |\n\n```\nok\n```\n"
    )
    world.publish("Issue a", at(2026, 6, 1, 12, 0), body=source)
    world.run(at(2026, 6, 2, 8, 5))
    tree = _html_tree(world.inbox("ada@example.com")[0])
    # iOS and Apple Mail would otherwise turn numbers, dates and addresses into links of their own.
    assert tree.xpath("//meta[@name='format-detection']/@content") == ["telephone=no, date=no, address=no, email=no"]
    cells = tree.xpath("//td[@class]")
    assert {cell.get("class") for cell in cells} >= {"outer", "masthead", "greeting", "content", "footer"}
    assert all("font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;" in cell.get("style") for cell in cells)
    (image,) = tree.xpath("//td[@class='content']//img")
    assert image.get("width") == "592" and image.get("class") == "fluid"  # premailer kept it
    assert "@media screen" in style_block_rules(body(world.inbox("ada@example.com")[0], "html"))
    assert tree.xpath("//td[@class='content']//table/@width") == ["100%"]
    pre = tree.xpath("//pre")[0].get("style")
    assert "break-all" not in pre and "white-space:pre-wrap" in pre
    content = tree.xpath("//td[@class='content']")[0].get("style")
    assert "word-wrap:break-word;overflow-wrap:anywhere" in content
