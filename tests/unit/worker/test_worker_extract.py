"""The exact frame at a time, checked by the frame number drawn in the decoded pixels."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.worker.synthetic import Clip, read_barcode
from thumbnailer.extract import frame_at
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
