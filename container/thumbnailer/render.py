"""Encode the displayed picture with Pillow: one file per width, aspect ratio kept, never upscaled."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

from thumbnailer import limits
from thumbnailer.options import ImageFormat

CONTENT_TYPES: dict[ImageFormat, str] = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Fast settings, measured on a 1080p frame of the benchmark's video (grainy, x264 4 Mbit/s),
# best of 7 on 2 loaded cores; decoding that keyframe to RGB took 49 ms (docs/benchmark.md):
#   PNG  level 4: 339 ms, 3.92 MB | level 1: 212 ms, 3.48 MB | level 1 + Z_RLE: 170 ms, 4.08 MB
#        level 0 (stored): 78 ms, 6.22 MB
#   JPEG q85 optimize: 30 ms, 0.61 MB | q85: 8 ms, 0.68 MB
#   WebP q80 method 4: 278 ms, 0.44 MB | method 2: 102 ms, 0.48 MB | method 0: 84 ms, 0.46 MB
# PNG: zlib level 1 with run-length matching (compress_type 3, Z_RLE), 2x faster than level 4 for
# 4% more bytes; only a stored PNG comes near the decode's time, at 1.6x the bytes. JPEG: no
# optimised Huffman pass (4x faster, 11% larger). WebP: method 0 (3.3x faster, 4% larger).
_SAVE_ARGS: dict[ImageFormat, dict[str, object]] = {
    "jpeg": {"format": "JPEG", "quality": 85, "optimize": False},
    "png": {"format": "PNG", "compress_level": 1, "compress_type": 3},
    "webp": {"format": "WEBP", "quality": 80, "method": 0},
}


@dataclass(frozen=True)
class Rendered:
    requested_width: int | None  # None: the displayed size
    width: int
    height: int
    format: ImageFormat
    body: bytes
    warnings: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def render(image: Image.Image, fmt: ImageFormat, widths: tuple[int, ...]) -> list[Rendered]:
    """One encoded thumbnail per requested width (or one at the picture's size)."""
    if image.mode != "RGB":  # convert() to the same mode would copy the picture
        image = image.convert("RGB")
    if not widths:
        limits.check_display_size(image.width, image.height, "thumbnail")
        return [Rendered(None, image.width, image.height, fmt, encode(image, fmt))]
    outputs = []
    for width in widths:
        warnings = []
        if width > image.width:
            warnings.append(f"width {width} is larger than the picture ({image.width}); not upscaled")
        target_width = min(width, image.width)
        target_height = max(1, round(image.height * target_width / image.width))
        limits.check_display_size(target_width, target_height, "thumbnail")
        resized = (
            image
            if target_width == image.width
            else image.resize((target_width, target_height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        )
        outputs.append(Rendered(width, resized.width, resized.height, fmt, encode(resized, fmt), warnings))
    return outputs


def encode(image: Image.Image, fmt: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **_SAVE_ARGS[fmt])  # type: ignore[arg-type]
    return buffer.getvalue()
