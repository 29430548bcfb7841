"""`publish_issue` given hostile or broken files: a clear error, nothing published, nothing copied."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from newsletters.models import Attachment, Issue
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def newsletter():
    return NewsletterFactory(slug="weekly")


@pytest.fixture
def folder(tmp_path) -> Path:
    """The editor's folder: the Markdown file and the files it may attach."""
    path = tmp_path / "issues"
    path.mkdir()
    (path / "ok.pdf").write_bytes(b"%PDF ok")
    (tmp_path / "secret.txt").write_text("SECRET_KEY=abc")
    return path


def issue_file(folder: Path, attachments: str, name: str = "note.md") -> Path:
    path = folder / name
    path.write_text(f"---\ntitle: Hello\nattachments: {attachments}\n---\nBody.\n", encoding="utf-8")
    return path


def refused(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("publish_issue", *map(str, args))
    assert not Issue.objects.exists()
    assert not Attachment.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
    return str(caught.value)


@pytest.mark.parametrize(
    "attachments",
    [
        "[../secret.txt]",
        "[../../../../../../../../etc/passwd]",
        "[/etc/passwd]",
        "[/proc/self/environ]",
        "[ok.pdf, ../secret.txt]",  # one bad file refuses all of them
    ],
)
def test_front_matter_cannot_attach_files_outside_its_directory(folder, newsletter, attachments):
    message = refused(issue_file(folder, attachments))
    assert "attachment" in message.lower()


def test_a_symlink_leading_out_is_refused(folder, newsletter):
    (folder / "innocent.pdf").symlink_to(folder.parent / "secret.txt")
    (folder / "env.txt").symlink_to("/proc/self/environ")
    assert "outside" in refused(issue_file(folder, "[innocent.pdf]"))
    assert "outside" in refused(issue_file(folder, "[env.txt]"))


def test_a_symlink_inside_the_directory_is_fine(folder, newsletter):
    (folder / "sub").mkdir()
    (folder / "sub" / "real.pdf").write_bytes(b"%PDF real")
    (folder / "alias.pdf").symlink_to(folder / "sub" / "real.pdf")
    call_command("publish_issue", str(issue_file(folder, "[alias.pdf, sub/real.pdf]")))
    assert [a.file.read() for a in Issue.objects.get().attachments.all()] == [b"%PDF real", b"%PDF real"]


def test_devices_fifos_and_directories_are_refused(folder, newsletter):
    os.mkfifo(folder / "pipe")
    (folder / "dir").mkdir()
    (folder / "zero").symlink_to("/dev/zero")
    assert "regular file" in refused(issue_file(folder, "[pipe]"))
    assert "regular file" in refused(issue_file(folder, "[dir]"))
    assert "outside" in refused(issue_file(folder, "[zero]"))
    # --attach is the operator's own choice and may point anywhere, but only to regular files.
    plain = issue_file(folder, "[]")
    assert "regular file" in refused(plain, "--attach", "/dev/zero")
    assert "regular file" in refused(plain, "--attach", folder / "pipe")


def test_attach_option_may_point_anywhere(folder, newsletter):
    call_command("publish_issue", str(issue_file(folder, "[]")), "--attach", str(folder.parent / "secret.txt"))
    assert Issue.objects.get().attachments.get().filename == "secret.txt"


def test_attachments_must_be_a_list_of_names(folder, newsletter):
    assert "list of file names" in refused(issue_file(folder, "{a: b}"))
    assert "list of file names" in refused(issue_file(folder, "[1, 2]"))


@pytest.mark.parametrize(
    ("file_name", "slug"),
    [("Привет-мир.md", "привет-мир"), ("日本語.md", "日本語"), ("Ünïcode Notes.md", "ünïcode-notes")],
)
def test_non_ascii_file_names_give_unicode_slugs_that_route(client, tmp_path, newsletter, file_name, slug):
    path = tmp_path / file_name
    path.write_text("# Title\n\nBody.\n", encoding="utf-8")
    call_command("publish_issue", str(path))
    issue = Issue.objects.get()
    assert issue.slug == slug
    assert client.get(issue.get_absolute_url()).status_code == 200
    assert client.get(newsletter.get_absolute_url()).status_code == 200
    assert client.get(f"/n/{newsletter.slug}/feed/").status_code == 200


def test_two_non_ascii_files_are_two_issues(tmp_path, newsletter):
    for name in ("Привет.md", "こんにちは.md"):
        (tmp_path / name).write_text(f"# {name}\n\nBody.\n", encoding="utf-8")
        call_command("publish_issue", str(tmp_path / name))
    assert Issue.objects.count() == 2


def test_a_name_without_any_slug_character_is_refused(tmp_path, newsletter):
    path = tmp_path / "!!!.md"
    path.write_text("# Title\n\nBody.\n", encoding="utf-8")
    assert "slug" in refused(path)
    path.write_text("---\nslug: '***'\n---\n# Title\n", encoding="utf-8")
    assert "slug" in refused(path)


def test_a_title_too_long_for_the_database_is_refused(tmp_path, newsletter):
    path = tmp_path / "long.md"
    path.write_text("# " + "x" * 300 + "\n\nBody.\n", encoding="utf-8")
    assert "title" in refused(path) and "250" in refused(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "no title"),
        (b"\xff\xfe# T\x00i\x00", "not UTF-8"),
        (b"# Title\n\nline two\n\xc3\x28 bad\n", "line 4 is not UTF-8"),
        (b"# Title\n\nA \x00 NUL\n", "NUL"),
        (b"# Ti\x1ctle\n\nBody\n", "title"),
        (b"---\ntitle: [unclosed\n---\nBody\n", "not valid YAML"),
        (b"---\n- a list\n---\nBody\n", "key: value"),
        (b'---\nnewsletter: "we\\0ekly"\n---\n# T\n', "No newsletter"),
    ],
)
def test_broken_files_get_a_clear_error(tmp_path, newsletter, content, expected):
    path = tmp_path / "broken.md"
    path.write_bytes(content)
    assert expected in refused(path)


def test_huge_and_unreadable_paths_get_a_clear_error(tmp_path, newsletter):
    huge = tmp_path / "huge.md"
    huge.write_bytes(b"# Big\n\n" + b"x" * (2 * 1024 * 1024))
    assert "larger than" in refused(huge)
    assert "not a regular file" in refused(tmp_path)
    assert "not a regular file" in refused("/dev/zero")
    assert "Cannot read" in refused(tmp_path / "missing.md")
