"""Animated preview (WebP, or GIF): `duration` seconds from `start` at `fps`, `width` px wide.

Every picture is the exact frame a player shows at start + k / fps. One seek to the keyframe
before the one holding the start (with B-frames, the index's keyframe can be shown after the
start), then one decode forward through the end, the packets fetched first as one byte range.
"""

from __future__ import annotations

import bisect
import io

import av
from PIL import Image

from thumbnailer.extract import DECODER_LOOKAHEAD_PACKETS, Measure, Prefetch, frame_at, no_measure
from thumbnailer.frames import Output, display_picture, resized, scaled_size
from thumbnailer.naming import OutputNames
from thumbnailer.output_options import PreviewSpec
from thumbnailer.probe import Video

CONTENT_TYPES = {"webp": "image/webp", "gif": "image/gif"}
END_MARGIN_SECONDS = 0.001


def preview_times(start: float, spec: PreviewSpec, duration: float | None) -> list[float]:
    """start + k / fps for the frames that fit in `spec.duration` and before the video's end."""
    end = start + spec.duration
    if duration is not None:
        end = min(end, duration - END_MARGIN_SECONDS)
    count = round(spec.duration * spec.fps)
    times = [start + k / spec.fps for k in range(count)]
    return [t for t in times if t < end] or [start]


def frames_at(
    video: Video, seconds: list[float], measure: Measure = no_measure, prefetch: Prefetch | None = None
) -> list[av.VideoFrame]:
    """The frame shown at each of `seconds` (ascending), decoded in one pass where the index allows."""
    targets = [video.pts_at(s) for s in seconds]
    keyframes = sorted({timestamp for timestamp, _, _ in video.keyframes()})
    before = [k for k in keyframes if k <= targets[0]] or keyframes[:1]
    frames = None
    if before:
        seek_to = before[-2] if len(before) >= 2 else before[-1]
        if prefetch is not None and (span := _span(video, seek_to, targets[-1])) is not None:
            with measure("prefetch"):
                prefetch([span])
        with measure("seek"):
            video.container.seek(seek_to, stream=video.stream, backward=True, any_frame=False)
        with measure("decode"):
            frames = _collect(video, targets)
    if frames is None:  # no index, or the seek landed after the start: frame by frame
        frames = [frame_at(video, s, measure, prefetch).frame for s in seconds]
    return frames


def _collect(video: Video, targets: list[int]) -> list[av.VideoFrame] | None:
    """Decode forward: for each target the last frame at or before it; None when the first frame
    decoded is already after the first target."""
    chosen: list[av.VideoFrame] = []
    last = None
    try:
        for packet in video.container.demux(video.stream):
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                while len(chosen) < len(targets) and frame.pts > targets[len(chosen)]:
                    if last is None:
                        return None
                    chosen.append(last)
                if len(chosen) == len(targets):
                    return chosen
                last = frame
    except av.error.FFmpegError:
        pass  # damaged data: what decoded before it is what a player shows
    if last is None:
        return None
    return chosen + [last] * (len(targets) - len(chosen))


def _span(video: Video, seek_to: int, last_target: int) -> tuple[int, int] | None:
    """Bytes [start, end) from the seek's keyframe to a few packets past the last target."""
    entries = video.stream.index_entries
    first = bisect.bisect_left(entries, seek_to, key=lambda entry: entry.timestamp)
    after = bisect.bisect_right(entries, last_target, key=lambda entry: entry.timestamp)
    last = min(after + DECODER_LOOKAHEAD_PACKETS, len(entries))
    if first >= last:
        return None
    start = entries[first].pos
    end = max(entries[i].pos + entries[i].size for i in range(first, last))
    return (start, end) if end > start >= 0 else None


def make_preview(
    video: Video,
    start: float,
    spec: PreviewSpec,
    names: OutputNames,
    *,
    measure: Measure = no_measure,
    prefetch: Prefetch | None = None,
) -> Output:
    times = preview_times(max(start, 0.0), spec, video.info.duration)
    size = scaled_size(video, spec.width)
    pictures = [
        resized(display_picture(video, frame), size) for frame in frames_at(video, times, measure, prefetch)
    ]
    # Whole milliseconds per frame that add up to the right total (GIF rounds to 10 ms).
    durations = [round((k + 1) * 1000 / spec.fps) - round(k * 1000 / spec.fps) for k in range(len(pictures))]
    body = encode_animation(pictures, durations, spec.format)
    return Output(
        names.preview(spec.format),
        body,
        CONTENT_TYPES[spec.format],
        {
            "kind": "preview",
            "format": spec.format,
            "width": size[0],
            "height": size[1],
            "start": round(times[0], 6),
            "end": round(times[-1] + 1 / spec.fps, 6),
            "fps": spec.fps,
            "frames": len(pictures),
        },
    )


def encode_animation(pictures: list[Image.Image], durations: list[int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    first, rest = pictures[0], pictures[1:]
    if fmt == "gif":
        first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=durations, loop=0)
    else:
        first.save(
            buffer,
            format="WEBP",
            save_all=True,
            append_images=rest,
            duration=durations,
            loop=0,
            quality=75,
            method=4,
        )
    return buffer.getvalue()
