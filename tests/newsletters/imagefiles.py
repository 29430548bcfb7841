"""Image files made with Pillow for the media library's tests: a photo, a diagram, a bomb, garbage."""

import io
import struct
import zlib
from functools import cache

from PIL import Image, ImageDraw, ImageFilter


@cache
def photo_jpeg(width: int = 4000, height: int = 3000, *, orientation: int = 1) -> bytes:
    """A photo-like JPEG: soft colour fields, film grain and sharp edges (12 megapixels by default)."""
    fields = Image.merge(
        "RGB",
        [Image.effect_noise((width // 16, height // 16), 64).filter(ImageFilter.GaussianBlur(1.2)) for _ in "rgb"],
    ).resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.merge("RGB", [Image.effect_noise((width // 4, height // 4), 14) for _ in "rgb"])
    image = Image.blend(fields, grain.resize((width, height)), 0.25)
    draw = ImageDraw.Draw(image)
    for i in range(40):
        x, y = i * 97 % width, i * 61 % height
        draw.ellipse((x, y, x + width // 12, y + height // 15), outline=(255, i * 6 % 255, 0), width=6)
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "Phone maker"  # Make: metadata the library removes
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def diagram_png(width: int = 800, height: int = 500) -> bytes:
    """A diagram with a transparent background."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, width - 40, height - 40), outline=(20, 90, 200, 255), width=8)
    draw.line((40, height - 40, width - 40, 40), fill=(200, 40, 40, 255), width=6)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid 1×1 PNG whose header is rewritten to declare width × height pixels (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    # The IHDR chunk: length (4), type (4), then width and height; its CRC follows its 13 bytes.
    start = data.index(b"IHDR")
    data[start + 4 : start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[start : start + 17]))
    data[start + 17 : start + 21] = struct.pack(">I", crc)
    return bytes(data)


def animated_gif(width: int = 200, height: int = 100, frames: int = 3) -> bytes:
    """A small animated GIF."""
    images = [Image.new("RGB", (width, height), (i * 80 % 256, 40, 200 - i * 50 % 200)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()
