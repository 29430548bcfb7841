"""The template gallery: every template on disk drawn on a newsletter's latest issue, with its branding."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.digest.conftest import at
from tests.digest.rendering.test_layout import templates_also_in, write
from tests.factories import IssueFactory, NewsletterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    user = get_user_model().objects.create_user("editor", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def gallery(client, newsletter, params=None):
    return client.get(reverse("admin:newsletters_newsletter_gallery", args=[newsletter.pk]), params or {})


def test_every_template_is_drawn_on_the_latest_issue_with_the_branding(client, editor):
    newsletter = NewsletterFactory(
        template="plain", accent_color="#8a3ffc", header_text="Brought by **readers**.", postal_address="1 Main St"
    )
    IssueFactory(newsletter=newsletter, title="Older", publish_at=at(2026, 5, 1))
    IssueFactory(newsletter=newsletter, title="The latest", publish_at=at(2026, 6, 1))
    response = gallery(client, newsletter)
    page = response.content.decode()
    assert response.status_code == 200
    assert re.findall(r'<h2 id="template-\d">([^<]*)</h2>', page) == ["Default", "Magazine", "Plain (in use)"]
    assert page.count('srcdoc="') == 3 and page.count("✓ Keeps the layout guarantees") == 3
    assert page.count("<strong>Subject:</strong> The latest") == 3 and "Older" not in page
    assert page.count("Brought by &lt;strong&gt;readers&lt;/strong&gt;") == 3  # the header, in each srcdoc
    assert "#unsubscribe-link-is-personal" in page  # personal links inert


def test_a_template_that_lost_its_unsubscribe_link_is_flagged_in_the_gallery(client, editor, settings, tmp_path):
    write(tmp_path, "emails/themes/bare/base.html", '{% extends "emails/base.html" %}')
    write(
        tmp_path, "emails/themes/bare/digest.html", '{% extends "emails/digest.html" %}{% block footer %}{% endblock %}'
    )
    templates_also_in(settings, tmp_path)
    newsletter = NewsletterFactory(postal_address="1 Main St")
    IssueFactory(newsletter=newsletter)
    page = gallery(client, newsletter).content.decode()
    assert "Layout check: template &#x27;bare&#x27;" not in page  # labelled by its name
    assert "Layout check: Bare: the digest mail&#x27;s HTML has no unsubscribe link" in page
    assert page.count("✓ Keeps the layout guarantees") == 3


def test_another_newsletter_is_chosen_and_one_without_issues_says_so(client, editor):
    first, second = NewsletterFactory(name="First"), NewsletterFactory(name="Second")
    response = gallery(client, first, {"newsletter": second.pk})
    assert response.status_code == 302 and response["Location"].endswith(f"/{second.pk}/templates/")
    page = gallery(client, second).content.decode()
    assert "Second has no issue yet" in page and "srcdoc" not in page


def test_the_gallery_needs_staff_and_the_view_permission(client):
    newsletter = NewsletterFactory()
    response = gallery(client, newsletter)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(get_user_model().objects.create_user("clerk", password="pw", is_staff=True))
    assert gallery(client, newsletter).status_code == 403
