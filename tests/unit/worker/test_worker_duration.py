"""The video's duration, with the sample index's end walked only when the claim is implausible
against its last entry: the same duration (and warning) as from the greatest entry, on the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from thumbnailer.errors import WorkerError
from thumbnailer.probe import IMPLAUSIBLE_DURATION_FACTOR, SourceInfo, Video, open_video


def _walked(video: Video) -> float | None:
    """probe._duration as it was: the greatest index entry, every entry walked."""
    stream, info = video.stream, video.info
    claimed: float | None = info.container_duration
    if stream.duration:
        claimed = float(((stream.start_time or 0) + stream.duration) * stream.time_base) - info.origin
    entries = stream.index_entries
    if not len(entries):
        return claimed
    frame_time = 1 / info.frame_rate if info.frame_rate else 0.0
    indexed = float(max(e.timestamp for e in entries) * stream.time_base) - info.origin + frame_time
    if claimed is None:
        return indexed
    if indexed > 0 and claimed > indexed * IMPLAUSIBLE_DURATION_FACTOR + 1:
        return indexed
    return claimed


def _opened(path: Path) -> tuple[SourceInfo, float | None] | None:
    try:
        with open_video(str(path)) as video:
            return video.info, _walked(video)
    except WorkerError:
        return None


def test_the_duration_is_the_one_the_whole_index_gives(media_dir: Path) -> None:
    checked = 0
    for path in sorted(media_dir.iterdir()):
        if not path.is_file() or path.name == "SOURCES.md":
            continue
        opened = _opened(path)
        if opened is None:
            continue
        info, expected = opened
        assert info.duration == pytest.approx(expected, abs=0), path.name
        checked += 1
    assert checked >= 20  # MP4, MOV, WebM, MPEG-TS...
