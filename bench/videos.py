"""The benchmark's videos, made here (nothing downloaded) and cached under bench/cache/.

One 60 s 1080p H.264 + AAC segment is encoded once; the longer files are that segment's
packets remuxed again and again with shifted timestamps, which takes seconds where
encoding 40 minutes would take an hour.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / "cache"
WIDTH, HEIGHT, FPS = 1920, 1080, 30
GOP_SECONDS = 2
VIDEO_BITRATE = 4_000_000
AUDIO_RATE = 48_000
SEGMENT_SECONDS = 60
LONG_FILE_MIN_BYTES = 1_000_000_000
FULL_MINUTES = (1, 10, 40)
QUICK_SEGMENT_SECONDS = 6
# Bump when the encoding changes so stale caches are rebuilt.
CACHE_VERSION = 1


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
    rng = np.random.default_rng(5)
    texture = _luma_texture(rng)
    chroma = rng.integers(96, 160, size=(HEIGHT // 2, WIDTH), dtype=np.uint8)
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(tmp), "w") as out:
        video = out.add_stream(
            "libx264",
            rate=FPS,
            options={
                "preset": "veryfast",
                "x264-params": f"keyint={FPS * GOP_SECONDS}:min-keyint={FPS * GOP_SECONDS}:scenecut=0"
                ":nal-hrd=vbr",
                "maxrate": str(VIDEO_BITRATE * 5 // 4),
                "bufsize": str(VIDEO_BITRATE * 2),
            },
        )
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = VIDEO_BITRATE
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        audio.bit_rate = 128_000
        samples_per_frame = 1024
        total_samples = seconds * AUDIO_RATE
        sample = 0
        for index in range(seconds * FPS):
            frame = _video_frame(texture, index, chroma)
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
            # Audio up to this video frame's end, in AAC-sized chunks.
            until = min(total_samples, (index + 1) * AUDIO_RATE // FPS)
            while until - sample >= samples_per_frame or (until == total_samples and sample < until):
                count = min(samples_per_frame, total_samples - sample)
                t = (np.arange(sample, sample + count) / AUDIO_RATE).astype(np.float32)
                tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts, chunk.time_base = AUDIO_RATE, sample, Fraction(1, AUDIO_RATE)
                out.mux(audio.encode(chunk))
                sample += count
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    tmp.replace(path)


def remux_repeated(segment: Path, path: Path, copies: int, moov_at_end: bool) -> None:
    """Write `copies` back-to-back copies of the segment's packets, timestamps shifted per copy."""
    tmp = path.with_suffix(".partial.mp4")
    options = {} if moov_at_end else {"movflags": "+faststart"}
    with av.open(str(segment)) as src, av.open(str(tmp), "w", options=options) as out:
        in_streams = [src.streams.video[0], src.streams.audio[0]]
        out_streams = [out.add_stream_from_template(s) for s in in_streams]
        spans = [_stream_span(s) for s in in_streams]
        # Muxing consumes a packet, so keep the payloads and timing and rebuild packets per copy.
        stored = [
            (in_streams.index(p.stream), bytes(p), p.pts, p.dts, p.duration, p.is_keyframe, p.time_base)
            for p in src.demux(*in_streams)
            if p.size > 0
        ]
        for copy in range(copies):
            for index, payload, pts, dts, duration, keyframe, time_base in stored:
                span = spans[index]
                # Audio priming (pts < 0) or overhang past the end would overlap a neighbouring copy.
                if pts is not None and (pts >= span or (copy > 0 and index == 1 and pts < 0)):
                    continue
                packet = av.Packet(payload)
                packet.stream = out_streams[index]
                packet.time_base = time_base
                packet.pts = None if pts is None else pts + copy * span
                packet.dts = None if dts is None else dts + copy * span
                packet.duration = duration
                packet.is_keyframe = keyframe
                out.mux(packet)
    tmp.replace(path)


def _stream_span(stream: av.stream.Stream) -> int:
    """The segment's nominal length in the stream's time base (whole seconds of the encode)."""
    seconds = round(float(stream.duration * stream.time_base)) if stream.duration else SEGMENT_SECONDS
    return int(Fraction(seconds) / stream.time_base)


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
                remux_repeated(segment, path, copies, moov_at_end)
            videos.append(
                Video(key=f"videos/{name}", path=path, seconds=float(seconds), moov_at_end=moov_at_end)
            )
    if not quick and videos[-1].size < LONG_FILE_MIN_BYTES:
        raise RuntimeError(f"{videos[-1].path.name} is {videos[-1].size} bytes, under 1 GB")
    return videos


def clear_cache() -> None:
    shutil.rmtree(CACHE_DIR, ignore_errors=True)
