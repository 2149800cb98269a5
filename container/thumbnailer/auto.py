"""`auto`: a representative frame, chosen among keyframes sampled across the video.

Cost: the keyframes' byte ranges (from the demuxer's index) are fetched in parallel before
decoding, then each sample is one seek and one keyframe decode (non-keyframes are skipped),
scored on a small grey copy. About 20 samples: a few MB and well under a second for a
10-minute 1080p video (docs: ../shared/notes/frame-extraction.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from thumbnailer.errors import UnusableVideo
from thumbnailer.extract import Measure, Picked, frame_at, no_measure
from thumbnailer.probe import Video

SAMPLES = 20
SCORE_WIDTH = 160
DARK_MEAN = 24.0  # mean luma at or below this: a black or fade frame
BRIGHT_MEAN = 235.0  # at or above: a white flash
FLAT_STDDEV = 12.0  # below this: near-uniform (a title card's background, a blank screen)

Prefetch = Callable[[Sequence[tuple[int, int]]], None]


@dataclass(frozen=True)
class Score:
    """How good a thumbnail a frame makes; `usable` False for black, white, flat frames."""

    mean: float
    stddev: float
    entropy: float
    sharpness: float

    @property
    def usable(self) -> bool:
        return DARK_MEAN < self.mean < BRIGHT_MEAN and self.stddev >= FLAT_STDDEV

    @property
    def value(self) -> float:
        # Detail (entropy, bits) first, then focus: a blurred frame has a low Laplacian variance.
        return self.entropy + 0.5 * math.log1p(self.sharpness) + (100.0 if self.usable else 0.0)


def score_frame(frame: av.VideoFrame) -> Score:
    height = max(1, round(SCORE_WIDTH * frame.height / max(frame.width, 1)))
    grey = frame.reformat(width=SCORE_WIDTH, height=height, format="gray").to_ndarray().astype(np.float32)
    return score_luma(grey)


def score_luma(grey: npt.NDArray[np.float32]) -> Score:
    histogram = np.bincount(np.clip(grey, 0, 255).astype(np.uint8).ravel(), minlength=256)
    p = histogram[histogram > 0] / grey.size
    laplacian = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
        if grey.shape[0] > 2 and grey.shape[1] > 2
        else np.zeros(1, dtype=np.float32)
    )
    return Score(
        mean=float(grey.mean()),
        stddev=float(grey.std()),
        entropy=float(-(p * np.log2(p)).sum()),
        sharpness=float(laplacian.var()),
    )


def representative_frame(
    video: Video, prefetch: Prefetch | None = None, measure: Measure = no_measure
) -> Picked:
    """The best-scoring sampled keyframe.

    When no keyframe is usable (a short clip whose only keyframe is black), exact frames at a
    quarter, half and three quarters of the duration are tried too; with still nothing usable,
    the best there is, with a warning.
    """
    keyframes = _sample(video)
    if prefetch is not None and keyframes:
        with measure("prefetch"):
            prefetch([(pos, pos + size) for _, pos, size in keyframes if pos >= 0 and size > 0])
    best: tuple[Score, Picked] | None = None
    context = video.stream.codec_context
    context.skip_frame = "NONKEY"  # only keyframes are scored: the decoder skips the rest
    try:
        for timestamp, _, _ in keyframes:
            best = _better(best, _first_keyframe_from(video, timestamp, measure))
    finally:
        context.skip_frame = "DEFAULT"
    if best is None or not best[0].usable:
        for fraction in (0.0, 0.25, 0.5, 0.75) if best is None else (0.25, 0.5, 0.75):
            seconds = fraction * (video.info.duration or 0.0)
            try:
                best = _better(best, frame_at(video, seconds, measure))
            except UnusableVideo:
                if best is None and fraction == 0.0:
                    raise
            if video.info.duration is None:
                break
    assert best is not None  # frame_at(0) returned or raised
    score, picked = best
    if not score.usable:
        picked.warnings.append(
            "no sampled frame looked representative (all dark, bright or flat); the best of them is used"
        )
    return picked


def _better(best: tuple[Score, Picked] | None, picked: Picked | None) -> tuple[Score, Picked] | None:
    if picked is None:
        return best
    picked.warnings.clear()  # a sample's own notes (past the end) do not concern the choice
    score = score_frame(picked.frame)
    return (score, picked) if best is None or score.value > best[0].value else best


def _sample(video: Video) -> list[tuple[int, int, int]]:
    """Up to SAMPLES keyframes evenly spread over the index, within the presentation."""
    keyframes = sorted(video.keyframes())
    if video.info.duration is not None:
        end = video.pts_at(video.info.duration)
        keyframes = [k for k in keyframes if k[0] <= end] or keyframes
    if len(keyframes) <= SAMPLES:
        return keyframes
    step = len(keyframes) / SAMPLES
    return [keyframes[int(i * step + step / 2)] for i in range(SAMPLES)]


def _first_keyframe_from(video: Video, timestamp: int, measure: Measure) -> Picked | None:
    try:
        with measure("seek"):
            video.container.seek(timestamp, stream=video.stream, backward=True, any_frame=False)
        with measure("decode"):
            for packet in video.container.demux(video.stream):
                for frame in packet.decode():
                    pts = frame.pts if frame.pts is not None else timestamp
                    return Picked(frame, video.seconds(int(pts)))
    except av.error.FFmpegError:
        return None  # a damaged sample: the others still count
    return None
