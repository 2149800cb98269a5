"""Sample videos made on the spot with PyAV: nothing to download, nothing committed."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from devkit.synthetic_video import H264, encode_mp4


def make_video(
    path: Path,
    *,
    seconds: float = 30.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    black_intro_s: float = 2.0,
) -> Path:
    """An H.264 .mp4: a black intro (what `auto` must avoid), then moving colour with a clock.

    Each frame after the intro shows a colour field that drifts, a bouncing disc and the time
    in large digits, so any thumbnail shows plainly which moment it was taken from. Light grain,
    different in every frame, gives it a camera's bitrate (a few Mbit/s at 720p) instead of a
    cartoon's, so the bytes the worker reads compare with the video's size as they would on a
    real upload.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial{path.suffix}")  # two makers never share
    h264 = H264(
        width,
        height,
        fps,
        # About 0.2 bit per pixel: 6 Mbit/s at 720p30, as a phone records it.
        options={"preset": "veryfast", "g": str(2 * fps)},
        bit_rate=round(0.2 * width * height * fps),
        time_base=Fraction(1, fps),
    )
    encode_mp4(partial, h264, _frames(round(seconds * fps), h264, black_intro_s), faststart=True)
    partial.replace(path)
    return path


def _frames(count: int, h264: H264, black_intro_s: float) -> Iterator[av.VideoFrame]:
    xs = np.arange(h264.width, dtype=np.float32) / h264.width
    ys = np.arange(h264.height, dtype=np.float32) / h264.height
    font = ImageFont.load_default(size=max(12, h264.height // 6))
    grain = np.random.default_rng(seed=7)
    for index in range(count):
        t = index / h264.fps
        image = _black(h264.width, h264.height) if t < black_intro_s else _scene(t, xs, ys, font, grain)
        frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
        frame.pts = index
        yield frame


def _black(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height))


def _scene(
    t: float,
    xs: np.ndarray,
    ys: np.ndarray,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    grain: np.random.Generator,
) -> Image.Image:
    # Separable waves (a row, a column, and sin(a + b) from both): cheap enough for 720p at 30 fps.
    width, height = xs.size, ys.size
    x_phase = 2 * math.pi * (xs + 0.11 * t)
    y_phase = 2 * math.pi * (ys * 1.5 - 0.07 * t) + 1.0
    blue_x, blue_y = 2 * math.pi * (xs + 0.05 * t) + 2.0, 2 * math.pi * ys
    red = np.broadcast_to(0.5 + 0.5 * np.sin(x_phase)[None, :], (height, width))
    green = np.broadcast_to(0.5 + 0.5 * np.sin(y_phase)[:, None], (height, width))
    blue = 0.5 + 0.5 * (np.outer(np.cos(blue_y), np.sin(blue_x)) + np.outer(np.sin(blue_y), np.cos(blue_x)))
    noise = grain.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
    pixels = np.clip(np.stack([red, green, blue], axis=-1) * 247 + 4 + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    radius = height // 8
    cx = radius + abs((t * width * 0.3) % (2 * (width - 2 * radius)) - (width - 2 * radius))
    cy = height / 2 + math.sin(t * 2.0) * (height / 2 - radius)
    draw.ellipse(
        (cx - radius, cy - radius, cx + radius, cy + radius), fill=(255, 255, 255), outline=(0, 0, 0)
    )
    draw.text(
        (width // 20, height // 20),
        f"{t:05.2f} s",
        fill=(255, 255, 255),
        font=font,
        stroke_width=3,
        stroke_fill=(0, 0, 0),
    )
    return image
