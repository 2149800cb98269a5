"""Synthetic clips for the worker's tests: pictures that say which frame they are, encoded by devkit.

Each frame of a `barcode` clip carries its own index as a row of black/white blocks, so the
decoded pixels say which frame a thumbnail is, through compression, colour conversion and
scaling. Other patterns: coloured quadrants (geometry), flat levels (colour, HDR).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

from devkit.synthetic_video import H264, encode_mp4

BITS = 10  # frame indexes up to 1023
MARGIN = 8  # pixels of grey around the barcode row

# Quadrant colours of the geometry pattern, as coded: top-left, top-right, bottom-left, bottom-right.
QUADRANTS = {
    "top_left": (230, 30, 30),
    "top_right": (30, 200, 30),
    "bottom_left": (30, 30, 230),
    "bottom_right": (240, 240, 240),
}


@dataclass(frozen=True)
class Clip:
    path: Path
    times: tuple[float, ...]  # presentation time of each frame, seconds
    width: int
    height: int

    def expected_index(self, seconds: float) -> int:
        """The frame a player shows at `seconds`: the last one whose time is at or before it."""
        shown = [i for i, t in enumerate(self.times) if t <= seconds + 1e-9]
        return shown[-1] if shown else 0


def barcode_image(
    index: int, width: int, height: int, rng: np.random.Generator | None = None
) -> npt.NDArray[np.uint8]:
    """RGB picture whose top row of blocks spells `index` in binary (MSB first), textured below."""
    picture = np.full((height, width, 3), 128, np.uint8)
    if rng is not None:  # texture, so these frames score as detailed next to a black intro
        noise = rng.integers(40, 216, size=(-(-height // 8), -(-width // 8), 1), dtype=np.uint8)
        picture[:] = np.kron(noise, np.ones((8, 8, 3), np.uint8))[:height, :width]
    block = (width - 2 * MARGIN) // BITS
    for bit in range(BITS):
        value = 255 if index >> (BITS - 1 - bit) & 1 else 0
        x = MARGIN + bit * block
        picture[MARGIN : MARGIN + block, x : x + block] = value
    return picture


def read_barcode(image: Image.Image, coded_width: int | None = None) -> int:
    """The frame index drawn by `barcode_image`, read from a decoded picture.

    `coded_width`: the clip's width, when the picture was resized (a thumbnail width).
    """
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    scale = image.width / (coded_width or image.width)
    block = (image.width / scale - 2 * MARGIN) // BITS
    value = 0
    for bit in range(BITS):
        x = int((MARGIN + (bit + 0.5) * block) * scale)
        y = int((MARGIN + 0.5 * block) * scale)
        value = value << 1 | int(grey[y, x] > 128)
    return value


def quadrant_image(width: int, height: int) -> npt.NDArray[np.uint8]:
    picture = np.zeros((height, width, 3), np.uint8)
    half_h, half_w = height // 2, width // 2
    picture[:half_h, :half_w] = QUADRANTS["top_left"]
    picture[:half_h, half_w:] = QUADRANTS["top_right"]
    picture[half_h:, :half_w] = QUADRANTS["bottom_left"]
    picture[half_h:, half_w:] = QUADRANTS["bottom_right"]
    return picture


def make_clip(
    path: Path,
    *,
    frames: int = 60,
    fps: int = 30,
    width: int = 192,
    height: int = 108,
    gop: int = 15,
    bframes: int = 2,
    faststart: bool = False,
    durations_ms: Sequence[int] | None = None,  # variable frame rate: one duration per frame
    black_frames: int = 0,  # a black intro before the numbered frames
    pattern: str = "barcode",
    rotation: int | None = None,  # counter-clockwise degrees, as PyAV's set_display_rotation
    hflip: bool = False,
    sar: Fraction | None = None,
) -> Clip:
    """An H.264 MP4 (moov at the end unless `faststart`); frame i shows index i when `barcode`."""
    h264 = H264(
        width,
        height,
        fps,
        options={
            "crf": "12",
            "preset": "veryfast",
            "bf": str(bframes),
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
        },
        time_base=Fraction(1, 1000) if durations_ms else Fraction(1, fps),
    )
    durations = list(durations_ms) if durations_ms else [1] * frames
    starts = [sum(durations[:index]) for index in range(frames)]

    def pictures() -> Iterator[av.VideoFrame]:
        rng = np.random.default_rng(7)
        for index in range(frames):
            if index < black_frames:
                picture = np.zeros((height, width, 3), np.uint8)
            elif pattern == "quadrants":
                picture = quadrant_image(width, height)
            else:
                picture = barcode_image(index, width, height, rng if black_frames else None)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts = starts[index]
            yield frame

    def setup(stream: av.VideoStream) -> None:
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if rotation is not None or hflip:
            stream.set_display_rotation(rotation or 0, hflip=hflip)

    encode_mp4(path, h264, pictures(), faststart=faststart, setup=setup)
    return Clip(path, tuple(float(pts * h264.frame_time_base) for pts in starts), width, height)


def make_levels_clip(
    path: Path,
    levels: Sequence[float],
    *,
    transfer: str = "pq",
    width: int = 128,
    height: int = 64,
    frames: int = 3,
) -> Path:
    """10-bit BT.2020 H.264 whose picture is vertical bands of neutral grey at the given signal levels.

    `levels` are non-linear signal values in [0, 1] (PQ or HLG code values, or plain
    gamma-coded for transfer "bt709"); limited range, so code = 64 + level * 876.
    """
    trc = {"pq": 16, "hlg": 18, "bt709": 1}[transfer]
    primaries = colorspace = 9 if transfer != "bt709" else 1
    luma = np.zeros((height, width), np.uint16)
    band = width // len(levels)
    for i, level in enumerate(levels):
        luma[:, i * band : (i + 1) * band] = round(64 + level * 876)
    chroma = np.full((height // 2, width), 512, np.uint16)  # U then V, each height/2 x width/2 per row pair
    planar = np.concatenate([luma, chroma]).astype(np.uint16)

    def pictures() -> Iterator[av.VideoFrame]:
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(planar, format="yuv420p10le")
            frame.pts = index
            frame.color_trc, frame.color_primaries, frame.colorspace, frame.color_range = (
                trc,
                primaries,
                colorspace,
                1,
            )
            yield frame

    def setup(stream: av.VideoStream) -> None:
        ctx = stream.codec_context
        ctx.color_trc, ctx.color_primaries, ctx.colorspace, ctx.color_range = trc, primaries, colorspace, 1

    h264 = H264(width, height, 25, options={"crf": "4", "preset": "veryfast"}, pix_fmt="yuv420p10le")
    encode_mp4(path, h264, pictures(), setup=setup)
    return path
