"""Long test videos made cheaply: a short segment encoded once, its packets remuxed again and again.

Encoding 100 MB would take minutes; remuxing takes a second or two (devkit.synthetic_video).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from devkit.synthetic_video import H264, copies_to_reach, encode_mp4, remux_repeated

FPS = 25


def encode_segment(
    path: Path,
    *,
    frames: int,
    width: int,
    height: int,
    noise: bool,
    faststart: bool,
    bframes: int = 0,
    audio: bool = False,
) -> None:
    """H.264 MP4, 25 fps, a keyframe every second; each frame visibly distinct.

    noise: a lossless grain background (big keyframes; with B-frames, still inter frames that
    only code a moving bar, as in real footage: a large keyframe and small frames after it).
    audio: an interleaved AAC stereo track, as a real recording has.
    """
    h264 = H264(
        width,
        height,
        FPS,
        options={
            "g": str(FPS),
            "keyint_min": str(FPS),
            "sc_threshold": "0",
            "preset": "ultrafast" if not bframes else "veryfast",
            "bf": str(bframes),
            "x264-params": "b-adapt=0",  # B-frames even where x264 would not choose them
            **({"crf": "0" if not bframes else "4"} if noise else {}),  # x264 has no B-frames when lossless
        },
    )
    pictures = _pictures(frames, width, height, noise=noise, still=bframes > 0)
    encode_mp4(path, h264, pictures, faststart=faststart, tone_seconds=frames / FPS if audio else None)


def _pictures(frames: int, width: int, height: int, *, noise: bool, still: bool) -> Iterator[av.VideoFrame]:
    rng = np.random.default_rng(7)
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if noise else None
    for index in range(frames):
        if background is not None and still:
            image = background.copy()
            image[:, index * 5 % (width - 8) :][:, :8] = 255  # a moving bar over still grain
        elif background is not None:
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            image = np.zeros((height, width, 3), np.uint8)
            image[:, :, 0] = index * 9 % 256
            image[:, index * 3 % width, 1] = 255
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        yield frame


def repeat_to_size(segment: Path, path: Path, *, min_bytes: int, faststart: bool) -> None:
    """The segment's packets remuxed until the file holds min_bytes, timestamps shifted."""
    remux_repeated(segment, path, copies=copies_to_reach(segment, min_bytes), faststart=faststart)
