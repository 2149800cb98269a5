"""The exact frame at a time, checked by the frame number drawn in the decoded pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from tests.unit.worker.synthetic import Clip, read_barcode
from thumbnailer.errors import UnusableVideoError
from thumbnailer.extract import frame_at, keyframes_at_or_before, prefer_slice_threads
from thumbnailer.probe import open_video


def _times_to_check(clip: Clip) -> list[float]:
    times = [0.0]
    for previous, current in zip(clip.times, clip.times[1:], strict=False):
        times += [current, (previous + current) / 2, current - 0.0005]  # on, between, just before
    return times


@pytest.mark.parametrize("name", ["moov_end", "moov_front", "vfr"])
def test_exact_frame_everywhere(clips: dict[str, Any], name: str) -> None:
    clip: Clip = clips[name]
    with clip.path.open("rb") as handle, open_video(handle) as video:
        for seconds in [*_times_to_check(clip), clip.times[-1], clip.times[-1] + 0.001]:
            picked = frame_at(video, seconds)
            expected = clip.expected_index(seconds)
            assert read_barcode(picked.frame.to_image()) == expected, f"{name} at {seconds}"
            assert picked.time == pytest.approx(clip.times[expected], abs=1e-3)
            assert picked.warnings == []


def test_decimal_times_hit_their_frame(clips: dict[str, Any]) -> None:
    """0.3 s is frame 9 at 30 fps even though 0.3 is not exact in binary floating point."""
    clip: Clip = clips["moov_end"]
    with clip.path.open("rb") as handle, open_video(handle) as video:
        for seconds, index in [(0.1, 3), (0.3, 9), (0.7, 21), (2.9, 87)]:
            assert read_barcode(frame_at(video, seconds).frame.to_image()) == index


@pytest.mark.parametrize("name", ["moov_end", "moov_front", "vfr"])
def test_past_the_end_gives_the_last_frame_and_a_warning(clips: dict[str, Any], name: str) -> None:
    clip: Clip = clips[name]
    with clip.path.open("rb") as handle, open_video(handle) as video:
        # 1e23 s is beyond any timestamp FFmpeg can hold (int64): still the last frame.
        for seconds in (clip.times[-1] + 1.0, 3600.0, 1e23):
            picked = frame_at(video, seconds)
            assert read_barcode(picked.frame.to_image()) == len(clip.times) - 1
            assert len(picked.warnings) == 1 and "past the end" in picked.warnings[0]


def test_probe_describes_the_clip(clips: dict[str, Any]) -> None:
    clip: Clip = clips["moov_end"]
    with clip.path.open("rb") as handle, open_video(handle) as video:
        info = video.info
        assert (info.display_width, info.display_height) == (clip.width, clip.height)
        assert info.duration == pytest.approx(3.0, abs=0.05)
        assert info.frame_rate == pytest.approx(30.0)
        assert info.codec == "h264"
        assert len(video.keyframes()) == 6  # one every 15 frames


def test_slice_threads_for_a_frame_near_its_keyframe_with_the_same_picture(clips: dict[str, Any]) -> None:
    """A frame at most SLICE_THREADS_UP_TO_PACKETS packets after its keyframe is decoded with slice
    threads, one further on keeps frame threads; the thread type is never changed once decoding began;
    the frames are the same ones either way."""
    clip: Clip = clips["moov_end"]  # 30 fps, a keyframe every 15 frames, B-frames
    for index, slices in ((45, True), (47, True), (40, False), (55, False)):
        seconds = clip.times[index]
        with open_video(str(clip.path)) as video:
            before = video.stream.thread_type
            assert prefer_slice_threads(video, seconds) is slices
            assert video.stream.thread_type == (av.codec.context.ThreadType.SLICE if slices else before)
            picked = frame_at(video, seconds)
            assert read_barcode(picked.frame.to_image()) == index
            assert prefer_slice_threads(video, clip.times[45]) is False  # the decoder is open


def _listed(video: Any, target: int, count: int) -> list[tuple[int, int, int]]:
    """What the whole keyframe list says: the `count` latest at or before the target, latest first."""
    latest: dict[int, tuple[int, int, int]] = {}
    for keyframe in video.keyframes():
        if keyframe[0] <= target:
            latest[keyframe[0]] = max(latest.get(keyframe[0], keyframe), keyframe)
    return [latest[t] for t in sorted(latest, reverse=True)[:count]]


def test_the_walk_back_finds_the_keyframes_the_whole_list_holds(
    clips: dict[str, Any], media_dir: Path
) -> None:
    """Every clip and every MP4/MOV of the corpus, targets across each index and past its ends."""
    paths = [clip.path for clip in clips.values()]
    paths += [p for p in sorted(media_dir.iterdir()) if p.suffix.lower() in {".mp4", ".mov", ".m4v"}]
    checked = 0
    for path in paths:
        try:
            opened = open_video(str(path))
            video = opened.__enter__()
        except UnusableVideoError:
            continue
        try:
            stamps = [e.timestamp for e in video.stream.index_entries]
            targets = {
                min(stamps, default=0) - 1,
                max(stamps, default=0) + 1,
                *stamps[:: max(1, len(stamps) // 40)],
            }
            for target in targets:
                for count in (1, 3):
                    assert keyframes_at_or_before(video, target, count) == _listed(video, target, count), path
            checked += 1
        finally:
            opened.__exit__(None, None, None)
    assert checked >= 25
