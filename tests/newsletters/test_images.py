"""The media library: uploads checked, drawn for email and stored, or refused with nothing stored; served cached."""

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image as Pillow

from digest.desk.previews import preview_draft, preview_warnings
from newsletters.images import IMAGE_TARGET_BYTES, ImageRefused, image_markdown, image_prepare, image_upload
from newsletters.markup import html_for_email, markdown_to_html
from newsletters.models import Image
from newsletters.roles import EDITOR
from tests.factories import NewsletterFactory
from tests.newsletters.imagefiles import animated_gif, bomb_png, diagram_png, photo_jpeg

pytestmark = pytest.mark.django_db


def stored_files(settings) -> list[Path]:
    media = Path(settings.MEDIA_ROOT)
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


def test_a_12_megapixel_photo_becomes_a_1200_px_jpeg_under_200_kb_without_its_metadata():
    prepared = image_prepare(photo_jpeg(), name="beach.jpg")
    assert (prepared.format, prepared.width, prepared.height) == ("JPEG", 1200, 900)
    assert len(prepared.data) <= IMAGE_TARGET_BYTES
    with Pillow.open(io.BytesIO(prepared.data)) as image:
        assert image.size == (1200, 900)
        assert not image.getexif()  # the phone's make (and where it was) is gone


def test_a_photo_taken_sideways_is_stored_upright():
    prepared = image_prepare(photo_jpeg(400, 300, orientation=6), name="sideways.jpg")
    assert (prepared.width, prepared.height) == (300, 400)


def test_a_diagram_with_transparency_stays_png_at_its_own_size():
    prepared = image_prepare(diagram_png(), name="flow.png")
    assert (prepared.format, prepared.width, prepared.height) == ("PNG", 800, 500)
    with Pillow.open(io.BytesIO(prepared.data)) as image:
        assert image.mode == "RGBA"


def test_an_animated_gif_is_kept_as_it_is():
    data = animated_gif()
    prepared = image_prepare(data, name="spinner.gif")
    assert (prepared.format, prepared.data) == ("GIF", data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.7 not an image at all", "is not an image that can be read"),
        (photo_jpeg.__wrapped__(64, 48)[:400], "is not an image that can be read"),  # cut short
        (bomb_png(10_000, 10_000), "declares 10000 × 10000 pixels"),  # past ours, under Pillow's limit
        (bomb_png(), "decompression bomb"),  # past Pillow's own limit too
        (animated_gif(1600, 100), "animated GIF 1600 px wide"),
    ],
    ids=["pdf", "truncated-jpeg", "bomb", "huge-bomb", "wide-animation"],
)
def test_bad_files_are_refused_with_a_message_and_nothing_is_stored(settings, data, message):
    newsletter = NewsletterFactory()
    with pytest.raises(ImageRefused, match=message):
        image_upload(newsletter=newsletter, data=data, name="upload.bin", alt="Something")
    assert not Image.objects.exists()
    assert stored_files(settings) == []


def test_alt_text_is_required(settings):
    with pytest.raises(ImageRefused, match="alt text"):
        image_upload(newsletter=NewsletterFactory(), data=diagram_png(), name="flow.png", alt="  \n ")
    assert stored_files(settings) == []


def test_the_same_image_twice_is_one_file_and_one_row(settings):
    newsletter = NewsletterFactory(slug="weekly")
    first = image_upload(newsletter=newsletter, data=diagram_png(), name="a.png", alt="The flow")
    again = image_upload(newsletter=newsletter, data=diagram_png(), name="b.png", alt="The flow again")
    assert first.pk == again.pk
    assert len(stored_files(settings)) == 1
    assert first.file.name.startswith("images/weekly/") and first.file.name.endswith(".png")


def test_the_markdown_of_an_image_keeps_its_width_and_height_through_the_sanitizer_into_the_email(settings):
    settings.SITE_URL = "https://news.example.com"
    newsletter = NewsletterFactory(slug="weekly")
    image = image_upload(newsletter=newsletter, data=photo_jpeg(), name="beach.jpg", alt="The beach at noon")
    markdown = image_markdown(image)
    assert markdown.startswith("![The beach at noon](https://news.example.com/images/weekly/")
    assert markdown.endswith('{width="592" height="444"}')  # drawn at the column's width, 1200 × 900 stored
    safe = markdown_to_html(markdown)
    assert 'width="592"' in safe and 'height="444"' in safe
    email = html_for_email(safe)
    assert 'width="592"' in email and 'height="444"' in email
    rendered = preview_draft(
        newsletter=newsletter, title="Noon", slug="noon", body=markdown, issue_pk=None, now=timezone.now()
    )
    assert 'alt="The beach at noon"' in rendered.html and 'width="592"' in rendered.html
    assert 'height="444"' in rendered.html
    # Without its alt text the preview warns.
    bare = markdown.replace("The beach at noon", "")
    assert any("has no alt text" in warning for warning in preview_warnings(body=bare, attachment_sizes=[]))
    assert not preview_warnings(body=markdown, attachment_sizes=[])


def test_the_site_serves_library_images_cached_for_a_year(client):
    image = image_upload(newsletter=NewsletterFactory(slug="weekly"), data=diagram_png(), name="a.png", alt="Flow")
    slug, name = Path(image.file.name).parts[-2:]
    response = client.get(reverse("newsletters:image", kwargs={"slug": slug, "name": name}))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "max-age=31536000" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == image.file.open("rb").read()
    # Only the library's images: not another file of the storage, not a guess.
    assert client.get(reverse("newsletters:image", kwargs={"slug": slug, "name": "nope.png"})).status_code == 404
    assert client.get(f"/images/{slug}/..%2F..%2Fsettings.py").status_code == 404


def editor_client(client) -> User:
    user = User.objects.create_user("ed", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=EDITOR))
    client.force_login(user)
    return user


def test_an_editor_uploads_an_image_and_gets_markdown_to_insert(client, settings):
    settings.SITE_URL = "https://news.example.com"
    newsletter = NewsletterFactory(slug="weekly")
    editor_client(client)
    response = client.post(
        reverse("admin:newsletters_image_upload"),
        {"newsletter": newsletter.pk, "alt": "The beach", "file": SimpleUploadedFile("beach.jpg", photo_jpeg())},
    )
    assert response.status_code == 201, response.content
    payload = response.json()
    assert (payload["width"], payload["height"]) == (1200, 900)
    assert payload["markdown"].startswith("![The beach](https://news.example.com/images/weekly/")
    library = client.get(reverse("admin:newsletters_image_library"), {"newsletter": newsletter.pk}).json()
    assert [image["alt"] for image in library["images"]] == ["The beach"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"alt": "", "file": ("a.png", diagram_png())}, "alt text"),
        ({"alt": "Notes", "file": ("notes.png", b"not a png")}, "notes.png is not an image"),
        ({"alt": "Huge", "file": ("huge.jpg", b"\xff" * (50 * 1024 * 1024))}, "huge.jpg is 50.0\xa0MB"),
        ({"alt": "Nothing"}, "Choose an image file"),
    ],
    ids=["no-alt", "not-an-image", "50-MB", "no-file"],
)
def test_bad_uploads_are_refused_with_a_clear_message(client, settings, fields, message):
    newsletter = NewsletterFactory()
    editor_client(client)
    data = {"newsletter": newsletter.pk, "alt": fields["alt"]}
    if "file" in fields:
        data["file"] = SimpleUploadedFile(*fields["file"])
    response = client.post(reverse("admin:newsletters_image_upload"), data)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Image.objects.exists() and stored_files(settings) == []


def test_uploads_need_staff_with_the_permission(client):
    newsletter = NewsletterFactory()
    url = reverse("admin:newsletters_image_upload")
    data = {"newsletter": newsletter.pk, "alt": "Flow"}
    assert client.post(url, {**data, "file": SimpleUploadedFile("a.png", diagram_png())}).status_code == 302  # login
    client.force_login(User.objects.create_user("viewer", password="pw", is_staff=True))
    assert client.post(url, {**data, "file": SimpleUploadedFile("a.png", diagram_png())}).status_code == 403
    assert not Image.objects.exists()


def test_the_media_library_page_uploads_through_the_same_checks(admin_client, settings):
    newsletter = NewsletterFactory()
    url = reverse("admin:newsletters_image_add")
    refused = admin_client.post(
        url,
        {"newsletter": newsletter.pk, "alt": "Bomb", "upload": SimpleUploadedFile("b.png", bomb_png(10_000, 10_000))},
    )
    assert refused.status_code == 200 and "decompression bomb" in refused.content.decode()
    assert stored_files(settings) == []
    added = admin_client.post(
        url, {"newsletter": newsletter.pk, "alt": "Flow", "upload": SimpleUploadedFile("f.png", diagram_png())}
    )
    assert added.status_code == 302
    image = Image.objects.get()
    assert (image.alt, image.width, image.content_type) == ("Flow", 800, "image/png")
    listing = admin_client.get(reverse("admin:newsletters_image_changelist")).content.decode()
    assert "Flow" in listing and "800 × 500" in listing
