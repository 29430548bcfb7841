"""The layout check: every template, rendered on sample content, keeps the default's guarantees, or is named."""

import copy
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from digest.rendering.layout import templates_check
from newsletters.models import Issue, Newsletter
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


def templates_also_in(settings, folder: Path) -> None:
    """Load templates from `folder` first, as an operator's own template folder."""
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [folder, *templates[0]["DIRS"]]
    settings.TEMPLATES = templates


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_every_shipped_template_keeps_the_guarantees_and_the_check_writes_nothing():
    out = StringIO()
    call_command("check_email_templates", stdout=out)
    assert "Every template keeps the layout guarantees (default, magazine, plain)." in out.getvalue()
    assert not Newsletter.objects.exists() and not Issue.objects.exists()


def test_a_template_that_drops_the_unsubscribe_link_the_address_and_outlooks_wrapper_is_named(settings, tmp_path):
    base = (TEMPLATES / "emails" / "base.html").read_text()
    # A theme whose base lost the Outlook wrapper and the postal address, whose digest lost the unsubscribe link.
    broken = re.sub(r"<!--\[if mso\]><table.*?<!\[endif\]-->", "", base)
    broken = re.sub(r"\{% block postal_address %\}.*?\{% endblock %\}", "", broken)
    write(tmp_path, "emails/themes/broken/base.html", broken)
    write(
        tmp_path,
        "emails/themes/broken/digest.html",
        '{% extends "emails/digest.html" %}{% block footer %}<p><a href="{{ archive_url }}">Archive</a></p>{% endblock %}',
    )
    templates_also_in(settings, tmp_path)
    out = StringIO()
    with pytest.raises(CommandError, match="layout guarantees missing"):
        call_command("check_email_templates", stdout=out)
    report = out.getvalue()
    theme = "template 'broken' (emails/themes/broken/)"
    assert (
        f"{theme}: the digest mail's HTML has no unsubscribe link (a link to https://xdigestx.invalid/unsubscribe)"
        in report
    )
    assert f"{theme}: the digest mail's HTML has no postal address" in report
    assert f"{theme}: the welcome mail's HTML has no postal address" in report
    assert f"{theme}: the digest mail's HTML has no Outlook wrapper" in report
    # The text parts kept both; the shipped templates pass.
    assert "mail's text" not in report
    assert "default template" not in report and "'plain'" not in report and "'magazine'" not in report


def test_a_newsletters_own_templates_are_checked_and_named(settings, tmp_path):
    NewsletterFactory(slug="weekly")
    write(
        tmp_path, "emails/weekly/digest.txt", "{{ greeting }}\n{% for entry in entries %}{{ entry.text }}{% endfor %}"
    )
    templates_also_in(settings, tmp_path)
    findings = [str(finding) for finding in templates_check(now=timezone.now())]
    own = "the newsletter 'weekly''s own templates (emails/weekly/)"
    assert findings == [
        f"{own}: the digest mail's text has no postal address ('Sample Press Ltd, 1 Layout Street, 10115 Checktown')",
        f"{own}: the digest mail's text has no unsubscribe link (https://xdigestx.invalid/unsubscribe)",
    ]
    assert Newsletter.objects.get().postal_address == ""  # the sample address was never saved
