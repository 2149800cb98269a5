"""The benchmark's videos, made here (nothing downloaded) and cached under bench/cache/.

One 60 s 1080p H.264 + AAC segment is encoded once; the longer files are that segment's
packets remuxed again and again with shifted timestamps (devkit.synthetic_video), which
takes seconds where encoding 40 minutes would take an hour.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from devkit.synthetic_video import H264, encode_mp4, remux_repeated

CACHE_DIR = Path(__file__).resolve().parent / "cache"
WIDTH, HEIGHT, FPS = 1920, 1080, 30
GOP_SECONDS = 2
VIDEO_BITRATE = 4_000_000
SEGMENT_SECONDS = 60
LONG_FILE_MIN_BYTES = 1_000_000_000
FULL_MINUTES = (1, 10, 40)
QUICK_SEGMENT_SECONDS = 6
# Bump when the encoding changes so stale caches are rebuilt.
CACHE_VERSION = 2


@dataclass(frozen=True)
class Video:
    """A generated video file: its key in the served bucket, its path, and what it is."""

    key: str
    path: Path
    seconds: float
    moov_at_end: bool

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _luma_texture(rng: np.random.Generator) -> np.ndarray:
    """A wide textured plane: smooth gradients plus grain, so x264 has real detail to spend bits on."""
    width = WIDTH * 2
    x = np.linspace(0, 8 * math.pi, width, dtype=np.float32)
    y = np.linspace(0, 4 * math.pi, HEIGHT, dtype=np.float32)[:, None]
    smooth = 110 + 60 * np.sin(x[None, :] + y) * np.cos(0.5 * x[None, :] - y)
    grain = rng.normal(0, 18, size=(HEIGHT, width)).astype(np.float32)
    return np.clip(smooth + grain, 16, 235).astype(np.uint8)


def _video_frame(texture: np.ndarray, index: int, chroma: np.ndarray) -> av.VideoFrame:
    """Frame `index`: the texture scrolled sideways, a moving bright bar and a frame counter band."""
    offset = (index * 7) % WIDTH
    luma = np.ascontiguousarray(texture[:, offset : offset + WIDTH])
    bar = (index * 13) % (HEIGHT - 60)
    luma[bar : bar + 60, :] = 235
    # 16 bits of the frame number as black/white blocks: each frame differs from its neighbours.
    for bit in range(16):
        luma[0:40, bit * 60 : bit * 60 + 60] = 235 if (index >> bit) & 1 else 16
    yuv = np.concatenate([luma, chroma], axis=0)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


def encode_segment(path: Path, seconds: int = SEGMENT_SECONDS) -> None:
    """Encode `seconds` of 1080p30 H.264 (keyframe every 2 s, about 4 Mbit/s) with stereo AAC."""
    h264 = H264(
        WIDTH,
        HEIGHT,
        FPS,
        options={
            "preset": "veryfast",
            "x264-params": f"keyint={FPS * GOP_SECONDS}:min-keyint={FPS * GOP_SECONDS}:scenecut=0"
            ":nal-hrd=vbr",
            "maxrate": str(VIDEO_BITRATE * 5 // 4),
            "bufsize": str(VIDEO_BITRATE * 2),
        },
        bit_rate=VIDEO_BITRATE,
    )
    tmp = path.with_suffix(".partial.mp4")
    encode_mp4(tmp, h264, _frames(seconds * FPS), tone_seconds=seconds)
    tmp.replace(path)


def _frames(count: int) -> Iterator[av.VideoFrame]:
    rng = np.random.default_rng(5)
    texture = _luma_texture(rng)
    chroma = rng.integers(96, 160, size=(HEIGHT // 2, WIDTH), dtype=np.uint8)
    for index in range(count):
        frame = _video_frame(texture, index, chroma)
        frame.pts = index
        yield frame


def ensure_videos(quick: bool = False, log: bool = True) -> list[Video]:
    """Build (or reuse from the cache) every benchmark video; the quick set is a few seconds long."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tag = f"v{CACHE_VERSION}-{'quick' if quick else 'full'}"
    segment_seconds = QUICK_SEGMENT_SECONDS if quick else SEGMENT_SECONDS
    segment = CACHE_DIR / f"segment-{tag}.mp4"
    if not segment.exists():
        if log:
            print(f"encoding a {segment_seconds} s 1080p segment (once; cached in {CACHE_DIR})", flush=True)
        encode_segment(segment, segment_seconds)
    copies_per_file = [1, 2] if quick else [m * 60 // segment_seconds for m in FULL_MINUTES]
    if not quick:
        # The longest file must pass 1 GB whatever bitrate x264 actually reached.
        needed = math.ceil(LONG_FILE_MIN_BYTES / segment.stat().st_size)
        copies_per_file[-1] = max(copies_per_file[-1], needed + 1)
    videos = []
    for copies in copies_per_file:
        for moov_at_end in (False, True):
            seconds = copies * segment_seconds
            name = f"{tag}-{seconds}s-moov-{'end' if moov_at_end else 'front'}.mp4"
            path = CACHE_DIR / name
            if not path.exists():
                if log:
                    print(f"remuxing {name}", flush=True)
                remux_repeated(segment, path, copies=copies, faststart=not moov_at_end)
            videos.append(
                Video(key=f"videos/{name}", path=path, seconds=float(seconds), moov_at_end=moov_at_end)
            )
    if not quick and videos[-1].size < LONG_FILE_MIN_BYTES:
        raise RuntimeError(f"{videos[-1].path.name} is {videos[-1].size} bytes, under 1 GB")
    return videos
