"""`manage.py publish_issue FILE.md`: front matter, titles, attachments, idempotent updates."""

import datetime
import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from newsletters.models import Issue, IssueStatus
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def newsletter():
    return NewsletterFactory(slug="weekly")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_sets_title_newsletter_time_and_attachments(tmp_path, newsletter):
    NewsletterFactory(slug="other")
    write(tmp_path / "report.pdf", "%PDF-1.4 fake")
    source = write(
        tmp_path / "2026-05-01-launch.md",
        "---\ntitle: We launched\nnewsletter: weekly\npublish_at: 2030-05-01T09:00:00+02:00\n"
        "attachments:\n  - report.pdf\n---\nBody **here**.\n",
    )
    call_command("publish_issue", str(source))
    issue = Issue.objects.get()
    assert issue.title == "We launched"
    assert issue.newsletter == newsletter
    assert issue.slug == "2026-05-01-launch"
    assert issue.status == IssueStatus.PUBLISHED
    assert issue.publish_at == datetime.datetime(2030, 5, 1, 7, 0, tzinfo=datetime.UTC)
    assert issue.state == "scheduled"
    assert issue.body == "Body **here**.\n"
    assert [a.filename for a in issue.attachments.all()] == ["report.pdf"]
    assert issue.attachments.get().file.read() == b"%PDF-1.4 fake"


def test_title_from_first_heading_and_single_newsletter_default(tmp_path, newsletter):
    source = write(tmp_path / "note.md", "# The real title\n\nText.\n")
    call_command("publish_issue", str(source))
    issue = Issue.objects.get()
    assert issue.title == "The real title"
    assert issue.body == "Text.\n"
    assert issue.state == "published"


def test_rerun_updates_instead_of_duplicating_and_keeps_publish_time(tmp_path, newsletter):
    source = write(tmp_path / "note.md", "# First\n\nOne.\n")
    call_command("publish_issue", str(source))
    published_at = Issue.objects.get().publish_at
    write(source, "# Second\n\nTwo.\n")
    call_command("publish_issue", str(source), "--attach", str(write(tmp_path / "a.txt", "a")))
    issue = Issue.objects.get()
    assert (issue.title, issue.body) == ("Second", "Two.\n")
    # Moving the publish time would put the issue in a new digest window and send it twice.
    assert issue.publish_at == published_at
    assert issue.attachments.count() == 1
    call_command("publish_issue", str(source))
    assert Issue.objects.get().attachments.count() == 0


def test_draft_and_publish_at_options(tmp_path, newsletter):
    source = write(tmp_path / "note.md", "# Draft\n\nText.\n")
    call_command("publish_issue", str(source), "--draft")
    assert Issue.objects.get().status == IssueStatus.DRAFT
    call_command("publish_issue", str(source), "--publish-at", "2031-01-02T03:04:05Z")
    issue = Issue.objects.get()
    assert issue.status == IssueStatus.PUBLISHED
    assert issue.publish_at == datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("no heading here\n", [], "no title"),
        ("---\ntitle: [unclosed\n---\nx\n", [], "not valid YAML"),
        ("---\ntitle: x\ncolour: red\n---\nx\n", [], "unknown front matter key"),
        ("---\ntitle: x\nnewsletter: nope\n---\nx\n", [], "No newsletter 'nope'"),
        ("---\ntitle: x\nattachments: [missing.pdf]\n---\nx\n", [], "does not exist"),
        ("# x\n", ["--publish-at", "next tuesday"], "not an ISO 8601"),
        ('---\ntitle: "a\\nBcc: x@example.com"\n---\nx\n', [], "Line breaks are not allowed"),
        # L7: YAML read the date itself, and an impossible one was a traceback.
        ("---\ntitle: x\npublish_at: 2026-13-45\n---\nx\n", [], "publish_at: '2026-13-45' is not an ISO 8601"),
        ("---\ntitle: x\ndate: 2026-02-30 09:00\n---\nx\n", [], "publish_at: '2026-02-30 09:00' is not a valid"),
        ("# x\n\n" + "[" * 18_000 + "\n", [], "bad.md: From line 3: too many"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(tmp_path, newsletter, text, args, message):
    source = write(tmp_path / "bad.md", text)
    with pytest.raises(CommandError, match=message):
        call_command("publish_issue", str(source), *args)
    assert Issue.objects.count() == 0


def test_oversized_attachment_is_refused(tmp_path, newsletter, settings):
    settings.NEWSLETTERS_MAX_ATTACHMENT_BYTES = 10
    big = write(tmp_path / "big.bin", "x" * 11)
    source = write(tmp_path / "note.md", "# T\n\nx\n")
    with pytest.raises(CommandError, match="at most 10 bytes"):
        call_command("publish_issue", str(source), "--attach", str(big))
    assert Issue.objects.count() == 0


def test_several_newsletters_need_a_choice(tmp_path, newsletter):
    NewsletterFactory()
    source = write(tmp_path / "note.md", "# T\n\nx\n")
    with pytest.raises(CommandError, match="--newsletter"):
        call_command("publish_issue", str(source))
    call_command("publish_issue", str(source), "--newsletter", "weekly")
    assert Issue.objects.get().newsletter == newsletter


def test_publish_now_uses_the_current_time(tmp_path, newsletter):
    before = timezone.now()
    call_command("publish_issue", str(write(tmp_path / "n.md", "# T\n\nx\n")))
    assert before <= Issue.objects.get().publish_at <= timezone.now()


def test_an_issue_too_long_for_gmails_clip_is_published_with_a_warning_naming_its_size(tmp_path, newsletter):
    long_body = "".join(
        f"## Part {n}\n\n" + "A sentence with a [link](https://example.com/a) in it. " * 20 + "\n\n" for n in range(60)
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("publish_issue", str(write(tmp_path / "long.md", "# Long\n\n" + long_body)), stdout=out, stderr=err)
    assert Issue.objects.get().title == "Long"
    assert re.search(
        r"Warning: This issue makes an email with [0-9]{3} KB of HTML. Gmail shows only the first 100 KB",
        err.getvalue(),
    )
    call_command("publish_issue", str(write(tmp_path / "short.md", "# Short\n\nText.\n")), stdout=out, stderr=err)
    assert err.getvalue().count("Warning") == 1


def test_publishing_prints_the_live_previews_warnings(tmp_path, newsletter):
    """What the editor's live preview flags (an image without alt text, a link that will be dropped) is said here too."""
    body = "# Notes\n\n![](https://example.com/chart.png)\n\nSee [the form](javascript:alert(1)).\n"
    out, err = io.StringIO(), io.StringIO()
    call_command("publish_issue", str(write(tmp_path / "notes.md", body)), stdout=out, stderr=err)
    assert Issue.objects.get().title == "Notes"  # published all the same: warnings, not errors
    warnings = [line for line in err.getvalue().splitlines() if line.startswith("Warning")]
    assert any("alt" in line for line in warnings), err.getvalue()
    assert any("javascript:alert(1)" in line for line in warnings), err.getvalue()
