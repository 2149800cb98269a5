"""`auto`: a representative frame, chosen among keyframes sampled across the video.

Cost: the keyframes' exact byte ranges (from the demuxer's index) are fetched in parallel
before decoding, then each sample is one seek, its keyframe's packet alone decoded (the decoder
drained rather than fed the packets after it), scored on a small grey copy. About 20 samples:
the keyframes' bytes (5 MB for the benchmark's 10-minute 1080p video) and about a second.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import av

from thumbnailer.errors import UnusableVideoError
from thumbnailer.extract import Measure, Picked, Prefetch, frame_at, no_measure
from thumbnailer.probe import Video

if TYPE_CHECKING:  # numpy (40 ms to import) is loaded by the scoring, only when `auto` runs
    import numpy as np
    import numpy.typing as npt

SAMPLES = 20
SCORE_WIDTH = 160
DARK_MEAN = 24.0  # mean luma at or below this: a black or fade frame
BRIGHT_MEAN = 235.0  # at or above: a white flash
FLAT_STDDEV = 12.0  # below this: near-uniform (a title card's background, a blank screen)


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
    import numpy as np

    height = max(1, round(SCORE_WIDTH * frame.height / max(frame.width, 1)))
    grey = frame.reformat(width=SCORE_WIDTH, height=height, format="gray").to_ndarray().astype(np.float32)
    return score_luma(grey)


def score_luma(grey: npt.NDArray[np.float32]) -> Score:
    import numpy as np

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
    for seek_to in _seek_targets(video, keyframes):
        best = _better(best, _keyframe_at(video, seek_to, measure))
    if best is None or not best[0].usable:
        best = _with_exact_frames(video, best, measure)
    score, picked = best
    if not score.usable:
        picked.warnings.append(
            "no sampled frame looked representative (all dark, bright or flat); the best of them is used"
        )
    return picked


def _with_exact_frames(
    video: Video, best: tuple[Score, Picked] | None, measure: Measure
) -> tuple[Score, Picked]:
    """The best of `best` and exact frames at a quarter, half and three quarters of the duration
    (and the first frame when no keyframe decoded; only it when the duration is unknown)."""
    for fraction in (0.0, 0.25, 0.5, 0.75) if best is None else (0.25, 0.5, 0.75):
        seconds = fraction * (video.info.duration or 0.0)
        try:
            best = _better(best, frame_at(video, seconds, measure))
        except UnusableVideoError:
            if best is None and fraction == 0.0:
                raise
        if video.info.duration is None:
            break
    assert best is not None  # frame_at(0) returned or raised
    return best


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


def _seek_targets(video: Video, sampled: Sequence[tuple[int, int, int]]) -> list[int]:
    """For each sampled keyframe, a time to seek to that lands on it and not on the one before.

    Seeks take presentation times, the index holds decode times: with B-frames a keyframe is
    shown after its decode time, so seeking to that would land on the previous keyframe (a
    whole GOP more to read). Just before the next keyframe's decode time lands on this one.
    """
    timestamps = sorted({timestamp for timestamp, _, _ in video.keyframes()})
    entries = video.stream.index_entries  # sorted by decode time
    last_sample = entries[len(entries) - 1].timestamp if len(entries) else 0
    targets = []
    for timestamp, _, _ in sampled:
        following = bisect.bisect_right(timestamps, timestamp)
        targets.append(
            timestamps[following] - 1 if following < len(timestamps) else max(timestamp, last_sample)
        )
    return targets


def _keyframe_at(video: Video, seek_to: int, measure: Measure) -> Picked | None:
    """The keyframe a seek lands on, decoded from its packet alone; None if it does not decode."""
    context = video.stream.codec_context
    try:
        with measure("seek"):
            video.container.seek(seek_to, stream=video.stream, backward=True, any_frame=False)
        with measure("decode"):
            packet = next(iter(video.container.demux(video.stream)), None)
            if packet is None or not packet.is_keyframe or not packet.size:
                return None
            # Draining after the one packet makes a frame-threaded decoder hand over its picture
            # now, instead of after reading the packets that follow (megabytes per sample).
            frames = [*context.decode(packet), *context.decode(None)]
            context.flush_buffers()  # ready for the next seek
    except av.error.FFmpegError:
        return None  # a damaged sample: the others still count
    if not frames or not frames[0].key_frame:
        return None  # nothing, or a sample the sync table calls a keyframe that is not one
    frame = frames[0]
    pts = frame.pts if frame.pts is not None else packet.pts
    return Picked(frame, video.seconds(int(pts if pts is not None else seek_to)))
