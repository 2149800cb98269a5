"""Open a video with PyAV and describe its main video stream as a player would show it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import IO

import av
from av.container import InputContainer
from av.rational import AVRational
from av.video.stream import VideoStream

from thumbnailer import boxes, limits
from thumbnailer.errors import UnusableVideoError
from thumbnailer.geometry import Orientation, displayed_size, orientation_from_matrix, sar_or_square

AV_TIME_BASE = 1_000_000
TIME_TOLERANCE = Fraction(1, 1_000_000)
# FFmpeg timestamps are int64: a later time (1e23 s) is clamped, and so still means "past the end".
MAX_PTS = 2**62
# A container duration this much longer than the sample index is not believed (fragmented
# files with a 2^32-tick duration, headers describing media that is not there).
IMPLAUSIBLE_DURATION_FACTOR = 1.5


@dataclass
class SourceInfo:
    codec: str
    coded_width: int
    coded_height: int
    sample_aspect_ratio: Fraction
    orientation: Orientation
    display_width: int
    display_height: int
    frame_rate: float | None
    origin: float  # seconds: pts of the presentation's time 0
    duration: float | None  # seconds from the origin to the end of the video stream's presentation
    container_format: str
    container_duration: float | None = None  # the longest stream's end (audio may outlast video)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Video:
    """An opened container, its chosen video stream, and what is known about it."""

    container: InputContainer
    stream: VideoStream
    info: SourceInfo

    @property
    def time_base(self) -> Fraction:
        return _fraction(self.stream.time_base)

    def seconds(self, pts: int) -> float:
        """A pts of the stream as seconds on the presentation timeline."""
        return float(pts * self.time_base) - self.info.origin

    def pts_at(self, seconds: float) -> int:
        """The largest pts that is at or before `seconds` on the presentation timeline.

        Decimal arithmetic to the microsecond: 0.3 s (0.29999... in binary) and 1/30 s written
        to 16 digits both reach the frame shown at that instant.
        """
        exact = Fraction(repr(float(seconds))) + Fraction(repr(float(self.info.origin)))
        return min(int((exact + TIME_TOLERANCE) // self.time_base), MAX_PTS)

    def keyframes(self) -> list[tuple[int, int, int]]:
        """(timestamp, byte position, size) of every keyframe in the demuxer's index."""
        entries = self.stream.index_entries
        return [(e.timestamp, e.pos, e.size) for e in entries if e.is_keyframe and not e.is_discard]


@contextlib.contextmanager
def open_video(fileobj: IO[bytes] | str) -> Iterator[Video]:
    """Open `fileobj`, pick its video stream, or raise UnusableVideoError naming the reason."""
    if not isinstance(fileobj, str):
        boxes.check(fileobj, fileobj.seek(0, os.SEEK_END))  # before the demuxer allocates its tables
    try:
        container = av.open(fileobj, mode="r")
    except av.error.FFmpegError as error:
        raise UnusableVideoError(
            f"not a readable video container: {error.strerror}", "not_a_video"
        ) from error
    try:
        limits.check_samples(sum(len(s.index_entries) for s in container.streams))
        stream = _main_video_stream(container)
        info = _describe(container, stream)
        stream.thread_type = "AUTO"  # frame and slice threads: decoding scales with the cores
        threads = limits.decoder_threads(info.coded_width, info.coded_height, os.cpu_count() or 1)
        if threads is not None:  # large pictures: fewer frames in flight, memory bounded
            stream.codec_context.thread_count = threads
        for other in container.streams:
            if other.index != stream.index:
                # Unread (audio, other tracks): the demuxer then neither fetches nor seeks to them.
                other.discard = av.stream.Discard.all
        yield Video(container, stream, info)
    finally:
        container.close()


def _main_video_stream(container: InputContainer) -> VideoStream:
    # Cover art is a "video" stream of one picture with the attached_pic disposition: not the video.
    candidates = [
        s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not candidates:
        raise UnusableVideoError("the file has no video stream", "no_video_stream")
    # A damaged sample description leaves a stream without a codec: nothing could decode it.
    candidates = [s for s in candidates if s.codec_context is not None]
    if not candidates:
        raise UnusableVideoError("the video stream names no codec that can decode it", "unsupported_codec")
    return max(candidates, key=lambda s: (s.frames or 0, (s.codec_context.width or 0)))


def _describe(container: InputContainer, stream: VideoStream) -> SourceInfo:
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise UnusableVideoError(
            "the video stream has no picture size (no decodable frames)", "no_decodable_frames"
        )
    limits.check_decoded_size(width, height)
    matrix = ctx.coded_side_data.get("display_matrix") if hasattr(ctx, "coded_side_data") else None
    orientation = orientation_from_matrix(matrix)
    sar = sar_or_square(_fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else None)
    limits.check_pixel_aspect(sar)
    shown = displayed_size(width, height, sar, orientation)
    limits.check_display_size(*shown)
    format_name = str(container.format.name)
    # MP4/MOV timestamps are already on the movie timeline (edit lists applied, an empty edit
    # shifts the first frame later), so time 0 is pts 0; elsewhere (MPEG-TS) the first timestamp.
    origin = 0.0 if "mov" in format_name else (container.start_time or 0) / AV_TIME_BASE
    info = SourceInfo(
        codec=str(ctx.name),
        coded_width=width,
        coded_height=height,
        sample_aspect_ratio=sar,
        orientation=orientation,
        display_width=shown[0],
        display_height=shown[1],
        frame_rate=float(stream.average_rate) if stream.average_rate else None,
        origin=origin,
        duration=None,
        container_format=format_name,
    )
    if container.duration:
        info.container_duration = ((container.start_time or 0) + container.duration) / AV_TIME_BASE - origin
    info.duration = _duration(stream, info)
    return info


def _duration(stream: VideoStream, info: SourceInfo) -> float | None:
    """The video stream's presentation end in seconds (not the container's: audio may outlast
    the video), cross-checked against the sample index; the container's when it has no other."""
    claimed: float | None = info.container_duration
    if stream.duration:
        claimed = float(((stream.start_time or 0) + stream.duration) * stream.time_base) - info.origin
    entries = stream.index_entries
    frame_time = 1 / info.frame_rate if info.frame_rate else 0.0
    if claimed is not None and len(entries):
        # The last entry's time is at most the greatest: a claim plausible against it is plausible
        # against the greatest, found without walking the index (72,000 entries for 40 minutes at
        # 30 fps: 15-30 ms a video). Only a claim that is not needs the walk.
        by_last = float(entries[len(entries) - 1].timestamp * stream.time_base) - info.origin + frame_time
        if by_last > 0 and claimed <= by_last * IMPLAUSIBLE_DURATION_FACTOR + 1:
            return claimed
    indexed: float | None = None
    if len(entries):
        last = max(e.timestamp for e in entries)
        indexed = float(last * stream.time_base) - info.origin + frame_time
    if claimed is None:
        return indexed
    if indexed is not None and indexed > 0 and claimed > indexed * IMPLAUSIBLE_DURATION_FACTOR + 1:
        info.warnings.append(
            f"the container claims {claimed:.3f} s but its samples end near {indexed:.3f} s; using the latter"
        )
        return indexed
    return claimed


def _fraction(rational: AVRational) -> Fraction:
    """PyAV's rational as a Fraction (its stubs do not declare it a numbers.Rational)."""
    return Fraction(rational.numerator, rational.denominator)
