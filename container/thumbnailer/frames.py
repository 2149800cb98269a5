"""What the extra outputs share: a decoded frame as the displayed picture, and one encoded output."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import av
from PIL import Image

from thumbnailer import colour, geometry
from thumbnailer.probe import Video


@dataclass
class Output:
    """One file to write: its name, body, type, and what the manifest says of it (`kind` ...)."""

    name: str
    body: bytes
    content_type: str
    entry: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def display_picture(video: Video, frame: av.VideoFrame) -> Image.Image:
    """The frame as a player shows it: sRGB (HDR tone-mapped), pixel aspect ratio and rotation applied."""
    info = video.info
    return geometry.to_display(colour.to_srgb_image(frame), info.sample_aspect_ratio, info.orientation)


def scaled_size(video: Video, width: int) -> tuple[int, int]:
    """`width` (never above the displayed width) and the height that keeps the displayed aspect ratio."""
    shown_width, shown_height = video.info.display_width, video.info.display_height
    width = max(1, min(width, shown_width))
    return width, max(1, round(shown_height * width / shown_width))


def resized(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    picture = picture.convert("RGB")
    if picture.size == size:
        return picture
    return picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def ceil_ms(seconds: float) -> int:
    """Whole milliseconds at or after `seconds` (1 µs tolerance, as Video.pts_at): a time written
    to the millisecond (WebVTT) that still shows the frame presented at `seconds`."""
    return max(0, math.ceil(round(seconds * 1000.0, 3) - 0.001))
