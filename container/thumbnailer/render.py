"""Encode the displayed picture (JPEG, WebP: Pillow; PNG: FFmpeg's encoder): one file per width,
aspect ratio kept, never upscaled."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction

import av
from PIL import Image

from thumbnailer import limits
from thumbnailer.options import ImageFormat

CONTENT_TYPES: dict[ImageFormat, str] = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Fast settings, measured on a 1080p frame of the benchmark's video (grainy, x264 4 Mbit/s), best
# of 7, load 0.5-1.2 on 2 cores (`python -m bench.encode`); decoding that keyframe took 24-46 ms,
# its conversion to RGB 1-4 ms (README "Outputs", bench/findings.md):
#   PNG, FFmpeg's encoder: stored (zlib level 0, no filter): 4-7 ms, 6.24 MB (the default)
#        | level 1, `up` filter: 92 ms, 4.62 MB | default level, paeth: 235 ms, 4.93 MB
#   PNG, Pillow: level 1 + Z_RLE: 126 ms, 5.23 MB | level 1: 153 ms, 3.94 MB | level 0: 81 ms,
#        6.22 MB (Pillow filters every row whatever the level) | default (6): 506 ms, 4.66 MB
#   JPEG q85 optimize: 38 ms, 1.02 MB | q85: 8 ms, 1.08 MB
#   WebP q80 method 4: 255 ms, 0.93 MB | method 2: 135 ms, 0.95 MB | method 0: 90 ms, 0.93 MB
# PNG: only a stored PNG costs less than the decode (any deflate pass costs 90 ms or more at
# 1080p), and FFmpeg's encoder writes one 20x faster than Pillow; the price is 1.2-1.6x the bytes
# of a compressed PNG (choose JPEG for small files). JPEG: no optimised Huffman pass (4x faster,
# 6% larger). WebP: method 0 (2.8x faster, the same size on this frame, 4% larger on others).
_SAVE_ARGS: dict[ImageFormat, dict[str, object]] = {
    "jpeg": {"format": "JPEG", "quality": 85, "optimize": False},
    "webp": {"format": "WEBP", "quality": 80, "method": 0},
}
PNG_COMPRESSION_LEVEL = 0  # zlib level: 0 stores the rows as they are
PNG_PREDICTION = "none"  # FFmpeg's `pred` option: no row filter (it only helps compression)


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
    if fmt == "png":
        return encode_png(image)
    buffer = io.BytesIO()
    image.save(buffer, **_SAVE_ARGS[fmt])  # type: ignore[arg-type]
    return buffer.getvalue()


def encode_png(image: Image.Image) -> bytes:
    """A lossless RGB PNG by FFmpeg's encoder: stored rows (see the measurements above).

    The pHYs chunk says square pixels (the picture is already at its displayed size): FFmpeg
    writes the context's sample aspect ratio there.
    """
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    frame: av.VideoFrame = av.VideoFrame.from_image(rgb)  # type: ignore[no-untyped-call]
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = image.width, image.height, "rgb24"
    codec.sample_aspect_ratio = Fraction(1, 1)
    codec.compression_level = PNG_COMPRESSION_LEVEL
    codec.options = {"pred": PNG_PREDICTION}
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(packet) for packet in packets)
