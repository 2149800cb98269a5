"""The frame's group of pictures, predicted from the moov box's sample tables and fetched while
the container opens, alongside the first samples FFmpeg's stream probe reads.

`mp4_index.gop_span` is checked against the range frame_at asks for from FFmpeg's own index
(`extract._packets_span`) on the real-world corpus; the opening of an S3 input over real HTTP to
moto: the GOP is fetched in the same parallel prefetch as the first samples, frame_at then asks
for nothing more, and the decoded pixels are those of the local file. Counts, not timings.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from thumbnailer.extract import DECODER_LOOKAHEAD_PACKETS, _packets_span, frame_at
from thumbnailer.inputs import READ_BLOCK_SIZE, S3Input
from thumbnailer.mp4_index import gop_span, video_track
from thumbnailer.mp4_layout import first_samples, moov_holder, touching_held
from thumbnailer.options import TimeSpec
from thumbnailer.pipeline import END_MARGIN_SECONDS
from thumbnailer.probe import open_video
from thumbnailer.s3_fetcher import open_source

KiB = 1 << 10
PERCENTS = (0.0, 1.0, 50.0, 90.0, 100.0)
SECONDS = (0.5, 1.0, 3.3, 1e6)
FIRST = 16 * KiB  # the first GET's bytes


def _predicted_and_actual(path: Path) -> list[tuple[Any, Any]] | None:
    data = path.read_bytes()
    holder = moov_holder(data[: 512 * KiB], len(data))
    track = video_track(data[holder[0] : holder[1]]) if holder else None
    if track is None:
        return None
    try:
        with path.open("rb") as file, open_video(file) as video:
            pairs = []
            for percent in PERCENTS:
                assert video.info.duration is not None
                seconds = min(video.info.duration * percent / 100.0, video.info.duration - END_MARGIN_SECONDS)
                ours = gop_span(track, None, percent, DECODER_LOOKAHEAD_PACKETS)
                pairs.append((ours, _packets_span(video, video.pts_at(max(seconds, 0.0)))))
            for seconds in SECONDS:
                ours = gop_span(track, seconds, None, DECODER_LOOKAHEAD_PACKETS)
                pairs.append((ours, _packets_span(video, video.pts_at(seconds))))
            return pairs
    except Exception:
        return None


def _check_predictions(paths: list[Path]) -> int:
    """On every MP4/MOV among `paths`: the same range, or no prediction; how many predicted."""
    predicted = 0
    for path in paths:
        if path.suffix.lower() not in {".mp4", ".mov", ".m4v"}:
            continue
        for ours, theirs in _predicted_and_actual(path) or []:
            assert ours is None or ours == theirs, path.name
            predicted += ours is not None
    return predicted


def test_the_predicted_span_is_the_one_frame_at_asks_for(media_dir: Path) -> None:
    # B-frames, edit lists (and one FFmpeg shifts further: not predicted), moov first or last, VFR.
    assert _check_predictions(sorted(media_dir.iterdir())) >= 140


def test_the_predicted_span_in_the_100mb_videos(big_videos: dict[str, Path]) -> None:
    assert _check_predictions(list(big_videos.values())) == 2 * (len(PERCENTS) + len(SECONDS))


def samples_fetched(samples: list[tuple[int, int]], holder: tuple[int, int]) -> list[tuple[int, int]]:
    """The first samples' ranges as one GET fetches them: they meet in a cache block, are
    stretched to held bytes sharing their block, and what is held is not fetched again."""
    stretched = touching_held(samples, [(0, FIRST), holder], READ_BLOCK_SIZE)
    start, end = min(s for s, _ in stretched), max(e for _, e in stretched)
    for held_start, held_end in [(0, FIRST), holder]:
        start = held_end if held_start <= start < held_end or start == held_end else start
    return [(start, end)]


def _decoded(source: S3Input | str, at: float, open_at: TimeSpec | None) -> tuple[np.ndarray, int, int]:
    """The frame at `at` (pixels), the requests after the open and after frame_at."""
    if isinstance(source, str):
        with open_video(source) as video:
            return frame_at(video, at).frame.to_ndarray(), 0, 0
    with source.open(open_at) as reader, open_video(reader) as video:
        opened = source.io_stats()["requests"]
        picked = frame_at(video, at, prefetch=source.prefetch)
        return picked.frame.to_ndarray(), opened, source.io_stats()["requests"]


@pytest.mark.parametrize("place", ["fast", "end"])
def test_opening_fetches_the_frames_gop_with_the_first_samples(
    big_videos: dict[str, Path], task_s3: Any, task_bucket: str, place: str
) -> None:
    path = big_videos[place]
    key = f"videos/{uuid.uuid4().hex[:8]}.mp4"
    with path.open("rb") as file:
        task_s3.upload_fileobj(file, task_bucket, key)
    at = 98.48  # 12 frames into the GOP that starts at 98 s, mid-way through the 196 s video
    try:
        # A first GET of 16 KiB: the first samples (a 330 KB keyframe) are then fetched after the moov box.
        without = S3Input(open_source(task_bucket, key, first_bytes=FIRST))
        pixels_without, opened_without, total_without = _decoded(without, at, None)
        ahead = S3Input(open_source(task_bucket, key, first_bytes=FIRST))
        pixels, opened, total = _decoded(ahead, at, TimeSpec("seconds", at))
    finally:  # the emulator lives for the session: free the 100 MB
        task_s3.delete_object(Bucket=task_bucket, Key=key)
    # Without the time, frame_at fetches the GOP in a GET of its own after the open.
    assert total_without == opened_without + 1
    # With it, the open's prefetch holds the GOP: no request after the open, none more in all.
    assert total == opened == total_without
    data = path.read_bytes()
    holder = moov_holder(data[: 512 * KiB], len(data))
    assert holder is not None
    track = video_track(data[holder[0] : holder[1]])
    assert track is not None
    gop = gop_span(track, at, None, DECODER_LOOKAHEAD_PACKETS)
    assert gop is not None and gop[1] - gop[0] > 300 * KiB  # the keyframe and the frames after it
    samples = first_samples(data[holder[0] : holder[1]], len(data))
    ranges = ahead._readers[0].stats.ranges
    # After the moov box, one prefetch of the first samples and the GOP together (parallel GETs):
    # the GOP no longer waits for the probe. Before: moov, samples, then (after the probe) the GOP.
    moov = (max(holder[0], FIRST), holder[1])  # less the first GET's bytes
    assert ranges[0] == moov
    assert sorted(ranges[1:]) == sorted([*samples_fetched(samples, holder), gop]), (ranges, samples, gop)
    assert without._readers[0].stats.ranges == [moov, *samples_fetched(samples, holder), gop]
    # Not a byte more than without the prediction: the same ranges, fetched earlier.
    assert ahead.io_stats()["bytes_read"] == without.io_stats()["bytes_read"]
    # The same frame as from the local file, decoded pixel for pixel.
    expected, _, _ = _decoded(str(path), at, None)
    np.testing.assert_array_equal(pixels, expected)
    np.testing.assert_array_equal(pixels_without, expected)
