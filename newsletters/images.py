"""A newsletter's media library: images an editor uploads, checked, resized for email and stored.

An upload is refused, with a message naming the file and nothing stored, when it is larger
than NEWSLETTERS_IMAGE_MAX_BYTES, is not a JPEG, PNG, GIF or WebP image Pillow can read, or
declares more than NEWSLETTERS_IMAGE_MAX_PIXELS pixels (a decompression bomb: a few KB of
header that would unpack into gigabytes). Pillow reads only the header before that check.

What is kept is drawn for the email's column: at most IMAGE_MAX_WIDTH pixels wide (twice the
600 px column, sharp on high-density screens), turned upright by its EXIF orientation and
stripped of its metadata (a phone's photo carries where it was taken). Photos become JPEG
under IMAGE_TARGET_BYTES when a lower quality gets them there; images with transparency
or few colours (screenshots, diagrams) stay PNG; an animated GIF is kept as it is when it fits.

Files are named by their content (images/<newsletter>/<hash>.<ext>) through Django's storage
API, so the site serves them with a cache that never has to be emptied (newsletters.views.image).
"""

import hashlib
import io
from dataclasses import dataclass
from pathlib import PurePath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from PIL import Image as Pillow
from PIL import ImageOps, UnidentifiedImageError

from newsletters.conf import newsletters_settings, site_url
from newsletters.emails import EMAIL_COLUMN_WIDTH
from newsletters.exceptions import NewslettersError
from newsletters.models import Image, Newsletter

# Twice the email's column (592 px of text, 600 px in round figures): sharp on high-density screens.
IMAGE_MAX_WIDTH = 1200
IMAGE_TARGET_BYTES = 200_000
_JPEG_QUALITIES = (82, 74, 66, 58)
_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
_CONTENT_TYPES = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "GIF": ("image/gif", "gif")}
# What Pillow raises on a truncated or corrupt file, depending on the format's plugin.
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError)


_SMALLER = "Nothing was stored; 1200 px wide is plenty for email."


class ImageRefused(NewslettersError):
    """An upload that is not an image this library keeps; nothing was stored."""


@dataclass(frozen=True)
class Prepared:
    """An image ready to store: its bytes, format and size in pixels."""

    data: bytes
    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self.format][0]

    @property
    def extension(self) -> str:
        return _CONTENT_TYPES[self.format][1]


def _size_check(size: int, *, name: str) -> None:
    limit = newsletters_settings.IMAGE_MAX_BYTES
    if size > limit:
        raise ImageRefused(
            f"{name} is {filesizeformat(size)}; images may be at most {filesizeformat(limit)} "
            "(NEWSLETTERS_IMAGE_MAX_BYTES). Export it smaller: 1200 px wide is plenty for email."
        )


def image_read(upload) -> bytes:
    """An uploaded file's bytes; refused (ImageRefused) before reading when it is over the size limit."""
    _size_check(upload.size or 0, name=upload.name)
    return upload.read()


def image_prepare(data: bytes, *, name: str) -> Prepared:
    """Check an uploaded file and draw it for email (see the module's docstring); raise ImageRefused."""
    _size_check(len(data), name=name)
    try:
        with Pillow.open(io.BytesIO(data)) as image:  # reads the header only
            _check_header(image, name=name)
            if image.format == "GIF" and getattr(image, "is_animated", False):
                return _animated_gif(image, data, name=name)
            return _drawn(image)
    except Pillow.DecompressionBombError as error:  # Pillow's own limit, past ours, refused on opening
        raise ImageRefused(
            f"{name} declares more pixels than any image may have: a decompression bomb. {_SMALLER}"
        ) from error
    except UnidentifiedImageError as error:
        raise ImageRefused(f"{name} is not an image that can be read: upload a JPEG, PNG, GIF or WebP.") from error
    except _UNREADABLE as error:
        raise ImageRefused(
            f"{name} is not an image that can be read (JPEG, PNG, GIF or WebP): {error or type(error).__name__}."
        ) from error


def _check_header(image: Pillow.Image, *, name: str) -> None:
    if image.format not in _FORMATS:
        raise ImageRefused(f"{name} is a {image.format} image; upload a JPEG, PNG, GIF or WebP.")
    width, height = image.size
    most = newsletters_settings.IMAGE_MAX_PIXELS
    if width < 1 or height < 1 or width * height > most:
        raise ImageRefused(
            f"{name} declares {width} × {height} pixels, more than the {most:,} an image may have "
            f"(NEWSLETTERS_IMAGE_MAX_PIXELS): a decompression bomb, or a file to export smaller. {_SMALLER}"
        )


def _animated_gif(image: Pillow.Image, data: bytes, *, name: str) -> Prepared:
    width, height = image.size
    if width > IMAGE_MAX_WIDTH:
        raise ImageRefused(
            f"{name} is an animated GIF {width} px wide; animations are kept as they are, so export it "
            f"at most {IMAGE_MAX_WIDTH} px wide."
        )
    image.seek(image.n_frames - 1)  # reads every frame: a truncated animation is refused here
    return Prepared(data=data, format="GIF", width=width, height=height)


def _drawn(image: Pillow.Image) -> Prepared:
    source = image.format
    if source == "JPEG":
        # Decode at a reduced scale straight from the JPEG's DCT: a 12-megapixel photo is read
        # at 1/2 or 1/4 of its size, several times faster, and still at least the target wide.
        width, height = image.size
        image.draft("RGB", (IMAGE_MAX_WIDTH, max(1, height * IMAGE_MAX_WIDTH // width)))
    image.load()
    image = ImageOps.exif_transpose(image)
    if image.width > IMAGE_MAX_WIDTH:
        height = max(1, round(image.height * IMAGE_MAX_WIDTH / image.width))
        image = image.resize((IMAGE_MAX_WIDTH, height), Pillow.Resampling.LANCZOS, reducing_gap=3.0)
    if _keeps_png(image, source=source):
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        return Prepared(data=out.getvalue(), format="PNG", width=image.width, height=image.height)
    rgb = image.convert("RGB")
    for quality in _JPEG_QUALITIES:
        out = io.BytesIO()
        rgb.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
        if out.tell() <= IMAGE_TARGET_BYTES:
            break
    return Prepared(data=out.getvalue(), format="JPEG", width=image.width, height=image.height)


def _keeps_png(image: Pillow.Image, *, source: str) -> bool:
    """Transparency, or a palette (diagrams, screenshots): PNG keeps them exact; a photo is better as JPEG."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return True
    return image.mode in ("P", "1") or (source == "PNG" and image.mode in ("L", "I;16"))


def image_alt_clean(alt: str) -> str:
    """Return the alt text on one line; raise ImageRefused when it is empty or too long."""
    alt = " ".join(alt.split())
    if not alt:
        raise ImageRefused("Describe the image first (its alt text): readers who cannot see it get those words.")
    if len(alt) > 300:
        raise ImageRefused("The alt text may be at most 300 characters; say what the image shows, briefly.")
    return alt


def image_upload(*, newsletter: Newsletter, data: bytes, name: str, alt: str) -> Image:
    """Check, draw and store an upload in a newsletter's library; raise ImageRefused, storing nothing."""
    alt = image_alt_clean(alt)
    prepared = image_prepare(data, name=PurePath(name).name[:200] or "The file")
    return image_store(newsletter=newsletter, prepared=prepared, name=name, alt=alt)


def image_store(*, newsletter: Newsletter, prepared: Prepared, name: str, alt: str) -> Image:
    """Store a prepared image in a newsletter's library (the same bytes again: the row already there)."""
    digest = hashlib.sha256(prepared.data).hexdigest()[:24]
    path = f"images/{newsletter.slug}/{digest}.{prepared.extension}"
    existing = Image.objects.filter(file=path).first()
    if existing is not None:
        return existing
    stored = default_storage.save(path, ContentFile(prepared.data))
    try:
        with transaction.atomic():
            return Image.objects.create(
                newsletter=newsletter,
                file=stored,
                alt=alt,
                width=prepared.width,
                height=prepared.height,
                size=len(prepared.data),
                content_type=prepared.content_type,
                original_name=PurePath(name).name[:200],
            )
    except IntegrityError:  # the same image, uploaded at the same moment by another editor
        if stored != path:
            default_storage.delete(stored)
        return Image.objects.get(file=path)


def image_url(image: Image) -> str:
    """The image's absolute address on this site (mail clients need the host)."""
    slug, name = PurePath(image.file.name).parts[-2:]
    return site_url(reverse("newsletters:image", kwargs={"slug": slug, "name": name}))


def image_markdown(image: Image, *, alt: str = "") -> str:
    """The Markdown that shows an image in an issue: its alt text, and the width and height the email keeps.

    The email's column is EMAIL_COLUMN_WIDTH px; the file is up to twice that for sharp screens, so the
    attributes say the size it is drawn at, which Outlook for Windows needs to draw it at all.
    """
    width = min(image.width, EMAIL_COLUMN_WIDTH)
    height = max(1, round(image.height * width / image.width))
    text = (alt or image.alt).replace("[", "(").replace("]", ")")
    return f'![{text}]({image_url(image)}){{width="{width}" height="{height}"}}'
