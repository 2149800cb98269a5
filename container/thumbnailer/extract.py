"""The exact frame at a time: the last frame whose presentation time is at or before it."""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import av

from thumbnailer import limits
from thumbnailer.errors import UnusableVideoError
from thumbnailer.probe import Video

# Accumulates the time spent in a named stage ("seek", "decode"): StageTimer.measure.
Measure = Callable[[str], AbstractContextManager[None]]
# Fetches byte ranges [start, end) ahead of decoding, in one go (RangedS3Reader.prefetch).
Prefetch = Callable[[Sequence[tuple[int, int]]], None]
# Packets the decoder reads past the target before handing its frame over: one per frame
# thread (FFmpeg starts cores + 1) plus B-frame reordering.
DECODER_LOOKAHEAD_PACKETS = (os.cpu_count() or 1) + 1 + 4


def no_measure(_name: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


@dataclass
class Picked:
    """A decoded frame and where it sits on the presentation timeline."""

    frame: av.VideoFrame
    time: float  # seconds from the start of the presentation
    warnings: list[str] = field(default_factory=list)


def frame_at(
    video: Video, seconds: float, measure: Measure = no_measure, prefetch: Prefetch | None = None
) -> Picked:
    """Seek to the keyframe at or before `seconds`, decode forward to the frame a player shows.

    Past the end gives the last frame, before the first frame gives the first one, each with
    a warning: never an empty result. With `prefetch`, the packets to decode are fetched first
    as one exact byte range (from the index) instead of in whole blocks as the decoder reads.
    """
    target = video.pts_at(seconds)
    if prefetch is not None and (span := _packets_span(video, target)) is not None:
        with measure("prefetch"):
            prefetch([span])
    run = _find(video, target, measure)
    best, overshoot, eof = run.best, run.overshoot, run.eof
    if best is None:
        if overshoot is None:
            raise UnusableVideoError("no frame of the video stream could be decoded", "no_decodable_frames")
        first = video.seconds(_pts(overshoot))
        return Picked(
            overshoot,
            first,
            [f"{seconds:.3f} s is before the first frame (shown at {first:.3f} s); the first frame is used"],
        )
    picked = Picked(best, video.seconds(_pts(best)), run.warnings)
    if eof and target >= _pts(best) + _frame_duration(video, best):
        picked.warnings.append(
            f"{seconds:.3f} s is past the end of the video; the last frame (at {picked.time:.3f} s) is used"
        )
    return picked


# Frame threads hand the first picture over only once their pipeline has filled (a frame per
# thread) and gain only on idle cores: for a frame a few packets after its keyframe, slice threads
# (the calling thread alone when the stream has one slice per picture, as x264's default) are
# faster. 1080p, the benchmark's video, load 2-3 on 2 cores: the keyframe at 50% 36-51 ms instead
# of 54-65; 36 frames into the GOP 84-88 ms instead of 103-126 (bench/findings.md).
SLICE_THREADS_UP_TO_PACKETS = 8


def prefer_slice_threads(video: Video, seconds: float) -> bool:
    """Decode with slice threads when the frame at `seconds` is at most SLICE_THREADS_UP_TO_PACKETS
    packets from its keyframe; only before the decoder opens (its thread type is fixed then).
    For a job that decodes nothing else (stills, storyboard and preview decode runs of frames)."""
    if video.stream.codec_context.is_open:
        return False
    # From the target back to its keyframe, at most that many entries: not the whole index, which
    # is 72,000 entries for 40 minutes at 30 fps (Video.keyframes walks it all, ~5-10 ms).
    entries = video.stream.index_entries
    after = bisect.bisect_right(entries, video.pts_at(seconds), key=lambda entry: entry.timestamp)
    near = (entries[after - back] for back in range(1, min(after, SLICE_THREADS_UP_TO_PACKETS) + 1))
    if not any(entry.is_keyframe and not entry.is_discard for entry in near):
        return False
    video.stream.thread_type = "SLICE"
    return True


def keyframes_at_or_before(video: Video, target: int, count: int) -> list[tuple[int, int, int]]:
    """The last `count` keyframes of the index at or before `target` (decode time), latest first,
    as `Video.keyframes` lists them (timestamp, byte position, size; of keyframes sharing a
    timestamp, the greatest). A walk back from the target, not a list of every keyframe: that
    walks the whole index, 72,000 entries for 40 minutes at 30 fps (10-22 ms), twice a frame."""
    entries = video.stream.index_entries
    index = bisect.bisect_right(entries, target, key=lambda entry: entry.timestamp)
    found: list[tuple[int, int, int]] = []
    while index > 0:
        index -= 1
        entry = entries[index]
        if not entry.is_keyframe or entry.is_discard:
            continue
        keyframe = (entry.timestamp, entry.pos, entry.size)
        if found and found[-1][0] == keyframe[0]:
            found[-1] = max(found[-1], keyframe)
        elif len(found) == count:
            break
        else:
            found.append(keyframe)
    return found


def _seek_points(video: Video, target: int) -> list[int | None]:
    """Where to seek, in order, until a frame at or before the target decodes.

    The demuxer's index holds decode times: with B-frames the keyframe it picks can be shown
    after the target, and an open GOP's leading frames need the keyframe before it. So step
    back one and two keyframes, then decode from the very start (None).
    """
    latest = keyframes_at_or_before(video, target, 3)
    return [target, *(timestamp for timestamp, _, _ in latest[1:3]), None]


def _packets_span(video: Video, target: int) -> tuple[int, int] | None:
    """Bytes [start, end) of the packets from the keyframe at or before the target (by decode
    time, as the demuxer's index holds) to a few packets past it; None without an index."""
    latest = keyframes_at_or_before(video, target, 1)
    entries = video.stream.index_entries
    if not latest or not len(entries):
        return None
    start = latest[0][1]
    after = bisect.bisect_right(entries, target, key=lambda entry: entry.timestamp)
    last = min(after + DECODER_LOOKAHEAD_PACKETS, len(entries))
    end = max((e.pos + e.size for e in (entries[i] for i in range(max(after - 1, 0), last))), default=0)
    return (start, end) if end > start >= 0 else None


def _seek(video: Video, target: int | None) -> None:
    try:
        if target is not None:
            video.container.seek(target, stream=video.stream, backward=True, any_frame=False)
            return
        entries = video.stream.index_entries
        if len(entries):
            # The first entry, even one an edit list discards: leading B-frames may need it.
            first = min(entry.timestamp for entry in entries)
            video.container.seek(first, stream=video.stream, backward=True, any_frame=True)
        else:
            video.container.seek(0, backward=True)
    except av.error.FFmpegError as error:
        if target is None:
            reason = "corrupt" if video.keyframes() else "no_decodable_frames"
            raise UnusableVideoError(
                f"the video cannot be read from its start: {error.strerror}", reason
            ) from error


@dataclass
class _Run:
    """What decoding forward from one seek gave."""

    best: av.VideoFrame | None = None  # the last frame at or before the target
    overshoot: av.VideoFrame | None = None  # the first frame after it
    eof: bool = False  # the stream ended before a frame after the target
    frames: int = 0  # frames decoded
    first_is_key: bool = True  # the first frame decoded is a keyframe
    first_pts: int = 0
    warnings: list[str] = field(default_factory=list)


def _find(video: Video, target: int, measure: Measure) -> _Run:
    """Seek and decode from each seek point in turn until a frame at or before the target decodes.

    A seek that lands on a sample the sync table (stss) calls a keyframe but the decoder does
    not (its first frame is not a keyframe: grey or smeared blocks) is not used: the earlier
    seek points follow, the last one decoding from the start, and a warning tells the cost.
    """
    run, lied_at, extra = _Run(), None, 0
    for seek_to in _seek_points(video, target):
        with measure("seek"):
            _seek(video, seek_to)
        with measure("decode"):
            run = _decode_until(video, target)
        if not run.first_is_key and seek_to is not None:
            lied_at = video.seconds(run.first_pts) if lied_at is None else lied_at
            extra += run.frames
            continue
        if run.best is not None:
            break
    if lied_at is not None:
        run.warnings.append(
            f"the sync sample at {lied_at:.3f} s is not a keyframe (the file's sync table is wrong): "
            f"decoded from an earlier keyframe instead, {extra} frames decoded in vain and {run.frames} "
            "decoded to reach the frame"
        )
    return run


def _decode_until(video: Video, target: int) -> _Run:
    """Decode forward until the first frame after the target, or the end of the stream."""
    run = _Run()
    try:
        for packet in video.container.demux(video.stream):
            for frame in packet.decode():
                if not run.frames:
                    run.first_is_key, run.first_pts = bool(frame.key_frame), _pts(frame)
                run.frames += 1
                limits.check_decoded_frames(run.frames)
                if _pts(frame) > target:
                    run.overshoot = frame
                    return run
                run.best = frame
    except av.error.FFmpegError as error:
        # Truncated or corrupt data: what decoded before the damage is still a frame a player shows.
        if run.best is None:
            raise UnusableVideoError(
                f"the video data is corrupt or truncated: {error.strerror}", "corrupt"
            ) from error
    run.eof = True
    return run


def _pts(frame: av.VideoFrame) -> int:
    if frame.pts is not None:
        return int(frame.pts)
    return int(frame.dts or 0)


def _frame_duration(video: Video, frame: av.VideoFrame) -> int:
    duration = int(frame.duration or 0)
    if duration > 0:
        return duration
    rate = video.info.frame_rate or 25.0
    return max(1, int(1 / (rate * video.time_base)))
