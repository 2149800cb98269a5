"""What the worker fetches before FFmpeg asks: the moov box, then each track's first sample.

`mp4_layout.first_samples` is checked against FFmpeg's own index on the real-world corpus; the
opening of an S3 input over real HTTP to moto: after those GETs, FFmpeg's probe reads nothing more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from thumbnailer.inputs import S3Input
from thumbnailer.mp4_layout import first_samples, moov_holder, touching_held
from thumbnailer.probe import open_video
from thumbnailer.s3_fetcher import open_source

KiB = 1 << 10


def _ffmpeg_first_packets(path: Path) -> list[tuple[int, int]] | None:
    """Each stream's first index entry as a byte range (None: FFmpeg does not open the file)."""
    try:
        with av.open(str(path)) as container:
            entries = [s.index_entries[0] for s in container.streams if len(s.index_entries)]
            return sorted((e.pos, e.pos + e.size) for e in entries)
    except av.error.FFmpegError:
        return None


def _ours(path: Path) -> list[tuple[int, int]] | None:
    data = path.read_bytes()
    holder = moov_holder(data[: 16 * KiB], len(data))
    return None if holder is None else sorted(first_samples(data[holder[0] : holder[1]], len(data)))


def test_first_samples_are_the_demuxers_first_packets(media_dir: Path) -> None:
    """On every MP4/MOV of the corpus: the same ranges as FFmpeg's index, or fewer (never others)."""
    checked = 0
    for path in sorted(media_dir.iterdir()):
        if path.suffix.lower() not in {".mp4", ".mov", ".m4v"}:
            continue
        ours, theirs = _ours(path), _ffmpeg_first_packets(path)
        if ours is None or theirs is None:
            continue
        # Fewer only where a track's tables are not in the moov box (fragmented files) or its first
        # sample runs past the end of the file (a truncated one): FFmpeg then reads as it would.
        assert set(ours) <= set(theirs), path.name
        checked += len(ours) == len(theirs) > 0
    assert checked >= 20  # audio and video, moov first or last, co64-free and edit lists


def test_a_range_sharing_a_block_with_held_bytes_is_stretched_to_touch_them() -> None:
    held = [(0, 100), (1050, 1100)]
    assert touching_held([(105, 300)], held, block_size=1000) == [(100, 300)]  # after, same block
    assert touching_held([(1005, 1020)], held, block_size=1000) == [(1005, 1050)]  # before, same block
    assert touching_held([(1200, 1300)], held, block_size=1000) == [(1100, 1300)]
    assert touching_held([(2000, 2100), (50, 300)], held, block_size=1000) == [(2000, 2100), (50, 300)]


def test_opening_fetches_moov_and_first_samples_then_the_probe_reads_nothing_more(
    media_dir: Path, task_s3: Any, task_bucket: str
) -> None:
    """A phone video with audio, moov box at the end; the first GET ends inside its first keyframe."""
    path = media_dir / "androidx__internal_emulator_transformer_output_270_rotated.mp4"  # 2.5 MB
    bucket, key = task_bucket, "videos/v.mp4"
    task_s3.upload_file(str(path), bucket, key)
    source = S3Input(open_source(bucket, key, first_bytes=16 * KiB))
    data = path.read_bytes()
    holder = moov_holder(data[: 16 * KiB], len(data))
    assert holder is not None and holder[1] == len(data)  # the moov box at the end
    (video, audio) = sorted(first_samples(data[holder[0] : holder[1]], len(data)))
    assert video[0] < 16 * KiB < video[1] == audio[0]  # the keyframe, then the first audio packet
    with source.open() as reader, open_video(reader) as opened:
        # The first GET, the moov box, the rest of the keyframe with the audio packet: no other.
        assert source.io_stats()["requests"] == 3
        assert source.io_stats()["bytes_read"] == 16 * KiB + (holder[1] - holder[0]) + audio[1] - 16 * KiB
        frame = next(opened.container.decode(opened.stream))
    # Decoded from those bytes: the same picture as FFmpeg decodes from the local file.
    with av.open(str(path)) as local:
        expected = next(local.decode(video=0))
    assert frame.to_ndarray().tobytes() == expected.to_ndarray().tobytes()
