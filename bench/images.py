"""Benchmark: a 12-megapixel JPEG uploaded to the media library, drawn 1200 px wide for email.

    .venv/bin/python bench/images.py [--repeat 5] [--photo path/to/photo.jpg]

Prepares the photo (Pillow-made, or yours with --photo) as an upload would (newsletters.images:
header checks, draft decoding, resize, JPEG under 200 KB), five times, and prints the stored
size and dimensions, CPU seconds and wall seconds (median), with the bare decode of the same
file at full size in the same run as the baseline. Exits non-zero past 200 KB or 2 s of CPU.
"""

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from PIL import Image  # noqa: E402

from newsletters.images import IMAGE_TARGET_BYTES, image_prepare  # noqa: E402
from tests.newsletters.imagefiles import photo_jpeg  # noqa: E402


def timed(work) -> tuple[float, float, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--photo", type=Path)
    options = parser.parse_args()
    data = options.photo.read_bytes() if options.photo else photo_jpeg()
    with Image.open(io.BytesIO(data)) as image:
        print(f"input: {image.width} × {image.height} JPEG, {len(data) / 1e6:.1f} MB")
    decode = [timed(lambda: Image.open(io.BytesIO(data)).load()) for _ in range(options.repeat)]
    runs = [timed(lambda: image_prepare(data, name="photo.jpg")) for _ in range(options.repeat)]
    prepared = runs[-1][2]
    cpu = statistics.median(run[0] for run in runs)
    wall = statistics.median(run[1] for run in runs)
    baseline = statistics.median(run[0] for run in decode)
    print(f"stored: {prepared.width} × {prepared.height} {prepared.format}, {len(prepared.data) / 1000:.0f} KB")
    print(f"prepare: {cpu:.3f} s CPU, {wall:.3f} s wall (median of {options.repeat})")
    print(f"baseline, decoding it at full size: {baseline:.3f} s CPU; prepare / decode = {cpu / baseline:.2f}")
    return 0 if len(prepared.data) <= IMAGE_TARGET_BYTES and cpu <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
