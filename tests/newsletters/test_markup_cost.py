"""Markdown bombs, read from one table: refused at bounded cost, with an error the editor can act on.

The pages readers see never fail because of one issue (the issue page shows an error box,
the feed leaves the issue out), the welcome mail is not sent, the admin form says why.
"""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from digest.models import DeliveryStatus, Letter
from newsletters.exceptions import MarkupError
from newsletters.markup import markdown_to_html, markup_check
from newsletters.models import Issue, OnboardingStep
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory
from tests.letters import welcome_deliver

# (name, Markdown, what the error says). Each took seconds to minutes, or broke the page, before.
BOMBS = [
    ("18,000 [", "[" * 18_000, "without their closing pair"),
    ("4,000 '[a '", "[a " * 4_000, "without their closing pair"),
    ("4,000 '![' ", "![" * 4_000, "without their closing pair"),
    ("4,000 '<a '", "<a " * 4_000, "without their closing pair"),
    ("4,000 '[a]('", "[a](" * 4_000, "without their closing pair"),
    ("4,000 footnote refs", "[^" * 4_000, "without their closing pair"),
    ("9,000 nested [ ]", "[" * 9_000 + "]" * 9_000, "without their closing pair"),
    ("100 paragraphs of 300 [", ("[a " * 300 + "\n\n") * 100, "without their closing pair"),
    ("a table of open brackets", "|a|b|\n|-|-|\n" + "|[x|<y|\n" * 5_000, "without their closing pair"),
    ("a list nested 250 deep", "\n".join("    " * level + "- x" for level in range(250)), "nested at most 16 deep"),
    ("tab-indented 250 deep", "\n".join("\t" * level + "- x" for level in range(250)), "nested at most 16 deep"),
    ("quotes nested 250 deep", ">" * 250 + " x", "quotes may be nested at most 16 deep"),
    ("600,000 characters", "word " * 120_000, "at most 500,000 are rendered"),
]
FINE = [
    ("a list nested 16 deep", "\n".join("    " * level + "- x" for level in range(16))),
    ("300 links in a list", "".join(f"- [link {n}](https://example.com/{n}) (see [this](#x))\n" for n in range(300))),
    ("brackets in code", "```\n" + "[" * 50_000 + "\n```\n\nAfter the code."),
    ("deep indentation in code", "```\n" + "\n".join(" " * 200 + "x" for _ in range(10)) + "\n```"),
    ("10,000 emphasis marks", "*" * 10_000 + "x" + "*" * 10_000),
    ("5,000 nested divs", "<div>" * 5_000 + "x" + "</div>" * 5_000),
]


@pytest.mark.parametrize(("name", "source", "says"), BOMBS, ids=[bomb[0] for bomb in BOMBS])
def test_a_markdown_bomb_is_refused_with_a_clear_error(name, source, says):
    with pytest.raises(MarkupError, match=says):
        markdown_to_html(source)


@pytest.mark.parametrize(("name", "source"), FINE, ids=[case[0] for case in FINE])
def test_ordinary_or_harmless_text_still_renders(name, source):
    markup_check(source)
    markdown_to_html(source)


def test_the_error_names_the_line():
    source = "Fine.\n\n- one\n- two\n" + "\n".join("    " * level + "- deeper" for level in range(1, 30))
    with pytest.raises(MarkupError, match="^Line 21 is indented 68 columns"):
        markdown_to_html(source)


def test_a_render_past_its_budget_stops_with_an_error(settings):
    settings.NEWSLETTERS_MARKDOWN_BUDGET_MS = 1
    # Under the static limits, but about a second of Python-Markdown: the budget stops it.
    source = "[a " * 800
    with pytest.raises(MarkupError, match="took more than 1 ms to render"):
        markdown_to_html(source + " ")  # not in the cache from another test


# ------------------------------------------------------------------ where it is rendered

BOMB = "[" * 18_000


def _broken_issue(newsletter, **kwargs) -> Issue:
    """An issue saved before these limits existed (the admin now refuses its text)."""
    return IssueFactory(newsletter=newsletter, body=BOMB, **kwargs)


@pytest.mark.django_db
def test_the_issue_page_shows_an_error_box_not_a_500(client, caplog):
    newsletter = NewsletterFactory(slug="weekly")
    issue = _broken_issue(newsletter, title="Broken", slug="broken")
    response = client.get(f"/n/weekly/{issue.slug}/")
    assert response.status_code == 200
    assert b"This issue cannot be shown right now." in response.content and b"Broken" in response.content
    assert "cannot be shown" in caplog.text


@pytest.mark.django_db
def test_the_feed_and_the_archive_leave_the_broken_issue_out_and_show_the_rest(client, caplog):
    newsletter = NewsletterFactory(slug="weekly")
    now = timezone.now()
    IssueFactory(newsletter=newsletter, title="Good one", publish_at=now - datetime.timedelta(days=2))
    _broken_issue(newsletter, title="Broken one", publish_at=now - datetime.timedelta(days=1))
    feed = client.get("/n/weekly/feed/")
    assert feed.status_code == 200
    assert b"Good one" in feed.content and b"Broken one" not in feed.content
    assert "left out of the feed" in caplog.text
    archive = client.get("/n/weekly/")
    assert archive.status_code == 200 and b"Broken one" in archive.content  # titles only: nothing to render


@pytest.mark.django_db
def test_the_admin_form_refuses_the_bomb_and_saves_nothing(client):
    editor = get_user_model().objects.create_user("ed", password="pw", is_staff=True, is_superuser=True)
    client.force_login(editor)
    newsletter = NewsletterFactory()
    data = {"newsletter": newsletter.pk, "title": "T", "slug": "t", "body": BOMB, "status": "draft"}
    data |= {"attachments-TOTAL_FORMS": "0", "attachments-INITIAL_FORMS": "0"}
    response = client.post(reverse("admin:newsletters_issue_add"), data)
    assert response.status_code == 200
    assert "without their closing pair" in response.content.decode()
    assert not Issue.objects.exists()

    change = reverse("admin:newsletters_newsletter_change", args=[newsletter.pk])
    page = client.get(change)
    # An empty field (the logo: a FieldFile without a file compares equal to None) is not posted.
    posted = {key: value for key, value in page.context["adminform"].form.initial.items() if value not in (None, "")}
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        posted |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    posted |= {"send_time": "08:00", "onboarding_steps-TOTAL_FORMS": "1", "onboarding_steps-0-position": "1"}
    posted |= {"onboarding_steps-0-delay_days": "0", "onboarding_steps-0-delay_hours": "0"}
    posted["onboarding_steps-0-body"] = "\n".join("    " * level + "- x" for level in range(40))
    response = client.post(change, posted)
    assert "nested at most 16 deep" in response.content.decode()
    assert not OnboardingStep.objects.exists()


@pytest.mark.django_db
def test_a_welcome_text_bomb_sends_nothing_and_costs_nothing(caplog):
    newsletter = NewsletterFactory(welcome_text="[" * 16_000)
    sent = welcome_deliver(subscriber=SubscriberFactory(), newsletter=newsletter, now=timezone.now())
    assert sent is False and mail.outbox == []
    letter = Letter.objects.get()  # held: the text's fault, not the reader's; sent once it is fixed
    assert letter.status == DeliveryStatus.DEFERRED and letter.attempts == 0
    assert "onboarding step 1" in letter.last_error and "without their closing pair" in letter.last_error


@pytest.mark.django_db
def test_the_admin_preview_of_a_broken_issue_shows_the_error(client):
    editor = get_user_model().objects.create_user("ed", password="pw", is_staff=True, is_superuser=True)
    client.force_login(editor)
    issue = _broken_issue(NewsletterFactory())
    response = client.get(reverse("admin:newsletters_issue_preview", args=[issue.pk]))
    assert response.status_code == 200 and "without their closing pair" in response.content.decode()
