"""Branding and templates per newsletter: what readers' mails look like, and what an editor may set."""

import copy

import pytest
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import modelform_factory
from django.utils import timezone

from digest.rendering.content import digest_render
from digest.rendering.groups import _signature
from newsletters.admin import NewsletterForm
from newsletters.branding import brand_for
from newsletters.checks import check_templates
from newsletters.invitations import invitation_message
from newsletters.letters import confirm_render, welcome_render
from newsletters.models import Newsletter, OnboardingStep, SubscriberStatus, SubscriptionStatus
from newsletters.onboarding import onboarding_message, reconfirm_message
from tests.digest.conftest import at
from tests.digest.rendering.test_clients import png
from tests.digest.rendering.test_layout import templates_also_in, write
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

HEADER = "Sponsored by **Acme**. <script>alert(1)</script> [x](javascript:alert(1))"
FOOTER = "Written in [Berlin](https://example.com/about)."


def render(newsletter):
    issue = IssueFactory(newsletter=newsletter, title="First light", body="Hello **world**.", publish_at=at(2026, 6, 1))
    return digest_render(newsletter=newsletter, issues=[issue], window_start=at(2026, 5, 31), window_end=at(2026, 6, 2))


def logo_form(data=None, files=None, instance=None):
    form_class = modelform_factory(Newsletter, form=NewsletterForm, fields=["logo", "accent_color", "header_text"])
    return form_class(data or {"accent_color": "", "header_text": ""}, files, instance=instance)


def test_header_footer_and_accent_reach_both_parts_sanitized():
    newsletter = NewsletterFactory(accent_color="#8A3FFC", header_text=HEADER, footer_text=FOOTER)
    rendered = render(newsletter)
    assert "Sponsored by <strong>Acme</strong>" in rendered.html
    assert "Sponsored by *Acme*." in rendered.text and "Written in Berlin <https://example.com/about>" in rendered.text
    assert 'href="https://example.com/about"' in rendered.html
    assert "<script" not in rendered.html and "javascript:" not in rendered.html
    # #8a3ffc reads on white (5.2:1): the masthead and links take it, inlined.
    assert "border-bottom-color:#8a3ffc" in rendered.html
    assert ";color:#8a3ffc" in rendered.html


def test_an_accent_too_light_for_text_colours_only_rules_and_buttons():
    light = brand_for(NewsletterFactory(accent_color="#ffd43b"))
    dark = brand_for(NewsletterFactory(accent_color="#8a3ffc"))
    assert (light.accent, light.accent_text) == ("#ffd43b", False)
    assert dark.accent_text
    rendered = render(NewsletterFactory(accent_color="#ffd43b"))
    assert "border-bottom-color:#ffd43b" in rendered.html and ";color:#ffd43b" not in rendered.html


def test_without_branding_the_default_mail_is_unchanged():
    plain = render(NewsletterFactory())
    assert brand_for(None) == brand_for(NewsletterFactory())
    assert "brand-header" not in plain.html and "brand-footer" not in plain.html and "<img" not in plain.html


def test_a_logo_is_uploaded_measured_and_drawn_at_most_200_px_wide(settings):
    settings.SITE_URL = "https://news.example.com"
    newsletter = NewsletterFactory()
    form = logo_form(files={"logo": SimpleUploadedFile("logo.png", png(400, 100), "image/png")}, instance=newsletter)
    assert form.is_valid(), form.errors
    form.save()
    newsletter.refresh_from_db()
    assert (newsletter.logo_width, newsletter.logo_height) == (400, 100)
    html = render(newsletter).html
    assert f'src="https://news.example.com/media/{newsletter.logo.name}"' in html
    assert 'width="200" height="50"' in html and f'alt="{newsletter.name}"' in html


def test_a_file_that_is_not_an_image_and_a_bad_colour_are_refused_and_change_nothing():
    newsletter = NewsletterFactory()
    form = logo_form(
        data={"accent_color": "blue", "header_text": ""},
        files={"logo": SimpleUploadedFile("logo.png", b"<svg onload=alert(1)>", "image/png")},
        instance=newsletter,
    )
    assert not form.is_valid()
    assert "Upload a valid image" in str(form.errors["logo"])
    assert "blue is not a colour: write it as # and six hex digits, e.g. #0b5cad." in form.errors["accent_color"]
    newsletter.refresh_from_db()
    assert not newsletter.logo and newsletter.accent_color == ""


def test_a_logo_of_too_many_pixels_is_refused():
    form = logo_form(files={"logo": SimpleUploadedFile("big.png", png(2100, 2000), "image/png")})
    assert not form.is_valid()
    assert "The logo is 2100 × 2000 pixels; at most 4 million, please." in form.errors["logo"]


def test_header_markdown_past_the_budget_is_refused_with_the_reason():
    form = logo_form(data={"accent_color": "", "header_text": "[" * 100_000})
    assert not form.is_valid() and form.errors["header_text"]


def test_the_template_is_chosen_among_those_on_disk():
    newsletter = NewsletterFactory(template="magazine")
    newsletter.full_clean()
    newsletter.template = "nonexistent"
    with pytest.raises(ValidationError, match="is not a valid choice"):
        newsletter.full_clean()


def test_templates_are_looked_up_for_the_newsletter_first_then_its_theme_then_the_default(settings, tmp_path):
    write(tmp_path, "emails/own-look/digest_subject.txt", "Own: {{ entries.0.issue.title }}")
    templates_also_in(settings, tmp_path)
    own = render(NewsletterFactory(slug="own-look", template="magazine"))
    magazine = render(NewsletterFactory(template="magazine"))
    default = render(NewsletterFactory())
    assert own.subject == "Own: First light" and magazine.subject == default.subject == "First light"
    assert "background-color:#1f2328" in own.html and "background-color:#1f2328" in magazine.html  # the band
    assert "background-color:#1f2328" not in default.html


def test_welcome_and_a_single_newsletters_confirmation_wear_its_template_and_branding(settings, tmp_path):
    newsletter = NewsletterFactory(template="plain", header_text="A **header**.", postal_address="1 Main St")
    welcome = welcome_render(
        newsletter=newsletter,
        name="Ada",
        email="a@example.com",
        body="Welcome!",
        latest=None,
        preferences_url="https://x.example/p",
    )
    confirm = confirm_render(
        name="Ada", newsletters=[(newsletter, "Daily")], confirm_url="https://x.example/c", max_age_days=7
    )
    several = confirm_render(
        name="Ada",
        newsletters=[(newsletter, "Daily"), (NewsletterFactory(), "Weekly")],
        confirm_url="https://x.example/c",
        max_age_days=7,
    )
    for letter in (welcome, confirm):
        assert "Georgia" in letter.html  # the plain template's serif
    assert "A <strong>header</strong>." in welcome.html and "A *header*." in welcome.text
    assert (
        "Georgia" not in several.html and "A <strong>header<" not in several.html
    )  # several newsletters: the default look


def test_a_chosen_template_gone_from_disk_is_a_warning():
    NewsletterFactory(slug="weekly", template="magazine")
    assert check_templates(None) == []
    Newsletter.objects.filter(slug="weekly").update(template="retired")
    [warning] = check_templates(None)
    assert warning.id == "newsletters.W005" and warning.level == checks.WARNING
    assert "'weekly' chooses the template 'retired'" in warning.msg and "default, magazine, plain" in warning.hint


def test_branding_changes_the_stored_renderings_signature():
    newsletter = NewsletterFactory()
    before = _signature(newsletter, [])
    changed = copy.copy(newsletter)
    changed.accent_color = "#123456"
    assert _signature(changed, []) != before


def test_onboarding_steps_reconfirmation_and_invitations_wear_the_newsletters_templates_and_branding(
    settings, tmp_path
):
    """Every letter the engine sends besides digests: looked up per newsletter, branded, with the list headers."""
    settings.SITE_URL = "https://news.example.org"
    write(tmp_path, "emails/own-look/invitation_subject.txt", "Own: still with {{ newsletter.name }}?")
    templates_also_in(settings, tmp_path)
    newsletter = NewsletterFactory(
        name="Notes",
        slug="own-look",
        template="plain",
        header_text="A **header**.",
        footer_text="A **footer**.",
        postal_address="1 Main St",
    )
    reader = SubscriptionFactory(newsletter=newsletter, subscriber=SubscriberFactory(name="Ada"))
    step = OnboardingStep.objects.create(newsletter=newsletter, position=2, delay_days=3, subject="Day 3", body="Tips.")
    invited = SubscriptionFactory(
        newsletter=newsletter,
        status=SubscriptionStatus.PENDING,
        subscriber=SubscriberFactory(status=SubscriberStatus.PENDING),
    )
    now = timezone.now()
    messages = {
        "step": onboarding_message(subscription=reader, step=step, now=now),
        "reconfirm": reconfirm_message(subscription=reader, pause_at=now),
        "invitation": invitation_message(invited, now=now),
    }
    assert messages["step"].subject == "Day 3"
    assert messages["invitation"].subject == "Own: still with Notes?"  # the newsletter's own template first
    for name, message in messages.items():
        [(html, _)] = message.alternatives
        assert "Georgia" in html, name  # the plain template's serif
        assert "A <strong>header</strong>." in html and "A <strong>footer</strong>." in html and "1 Main St" in html, (
            name
        )
        assert "A *header*." in message.body and "A *footer*." in message.body and "1 Main St" in message.body, name
        parsed = message.message()
        assert parsed["List-Id"] == "Notes <own-look.news.example.org>", name
        assert parsed["List-Unsubscribe"].startswith("<https://news.example.org/u/"), name
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", name
