"""One job, whatever the input and the output: open, pick the frame, render, write, describe.

The CLI and the task differ only in the `Input` (inputs.py: a local file or a ranged S3 reader)
and the `Sink` (sinks.py: a directory or the bucket); everything else runs here.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import IO, Any, Protocol

import av
from PIL import Image

from thumbnailer import colour, extras, geometry, limits, manifest, render
from thumbnailer.errors import UnusableVideoError
from thumbnailer.extract import Picked, Prefetch, frame_at, prefer_slice_threads
from thumbnailer.frames import Output
from thumbnailer.logs import StageTimer
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options, TimeSpec
from thumbnailer.probe import SourceInfo, Video, open_video

THUMBNAIL_CACHE_CONTROL = "public, max-age=86400"
# The manifest changes when the video is replaced: clients should revalidate it.
MANIFEST_CACHE_CONTROL = "no-cache"
# Shorter than any frame (1000 fps) and longer than the 1 µs tolerance of Video.pts_at.
END_MARGIN_SECONDS = 0.001


class Sink(Protocol):
    """Where outputs go; returns the name the manifest should list (a key or a file path)."""

    def put(
        self, name: str, body: bytes, *, content_type: str, cache_control: str, metadata: Mapping[str, str]
    ) -> str: ...


class Input(Protocol):
    """A readable source (inputs.LocalInput, inputs.S3Input): opened once, described in the manifest."""

    @property
    def description(self) -> dict[str, Any]:
        """Identity for the manifest: uri, bucket, key, version_id, etag, size... or path."""
        ...

    @property
    def output_metadata(self) -> dict[str, str]:
        """Stamped on every output."""
        ...

    @property
    def prefetch(self) -> Prefetch | None:
        """Fetches byte ranges ahead of decoding, where reads cost requests; None for a local file."""
        ...

    @property
    def warnings(self) -> list[str]:
        """What the manifest should warn about the source itself (e.g. not the object the event named)."""
        ...

    def open(self, at: TimeSpec | None = None) -> AbstractContextManager[IO[bytes]]:
        """A seekable binary file over the source; `at` says which frame will be decoded (its
        bytes may be fetched while the container is opened)."""
        ...

    def io_stats(self) -> dict[str, Any]:
        """What reading cost (requests, bytes), for the manifest."""
        ...

    def check_current(self) -> None:
        """Raise SupersededError when the source is no longer the current version of its name."""
        ...


# Called once the video is probed, before any frame is decoded: raises a WorkerError to stop the
# job there (the worker function hands a job too heavy for it to Fargate: lambda_handler.py).
Admit = Callable[[SourceInfo, Options], None]


def run(
    source: Input,
    options: Options,
    names: OutputNames,
    sink: Sink,
    timer: StageTimer,
    *,
    admit: Admit | None = None,
) -> dict[str, Any]:
    """Make and write the thumbnails, then the manifest (last: its presence means all is written)."""
    names.thumbnails(options.extension, options.widths)  # a name S3 would refuse fails before any read
    extras.check_names(options, names)
    with contextlib.ExitStack() as stack:
        fileobj = stack.enter_context(source.open(options.at))
        with timer.stage("open"), input_faults():
            video = stack.enter_context(open_video(fileobj))
        if admit is not None:
            admit(video.info, options)
        with input_faults():
            picked = _pick(video, options, source, timer)
        timer.log_total("prefetch", "seek", "decode")
        with timer.stage("convert"), input_faults():
            info = video.info
            picture, described = _to_picture(picked, info)
        with input_faults():  # stills, storyboard, preview: only when asked for, while the video is open
            extra_outputs, extra_warnings = extras.make(
                video, options, names, picked=picked, prefetch=source.prefetch, timer=timer
            )
    with timer.stage("encode"):
        rendered = render.render(picture, options.format, options.widths)
    metadata = {**source.output_metadata, "thumbnail-time": f"{picked.time:.6f}"}
    source.check_current()  # the last moment before anything is written
    with timer.stage("upload"):
        listed = _put_thumbnails(sink, names, options, rendered, metadata)
        listed += _put_extras(sink, extra_outputs, source.output_metadata)
    warnings = [*info.warnings, *picked.warnings, *(w for output in rendered for w in output.warnings)]
    warnings += [*extra_warnings, *(w for extra in extra_outputs for w in extra.warnings)]
    document = manifest.success(
        origin={"input": source.description},
        source=manifest.describe_source(info, described),
        options=options,
        frame_time=picked.time,
        thumbnails=listed,
        warnings=[*source.warnings, *warnings],  # the source's own first (not the event's object)
        io=source.io_stats(),
        timings_ms=timer.timings_ms,
    )
    sink.put(
        names.manifest(),
        manifest.dumps(document),
        content_type=manifest.CONTENT_TYPE,
        cache_control=MANIFEST_CACHE_CONTROL,
        metadata=source.output_metadata,
    )
    return document


def _to_picture(picked: Picked, info: SourceInfo) -> tuple[Image.Image, colour.ColourInfo]:
    """The frame as displayed, in sRGB; its size checked again first (a stream may change size)."""
    frame = picked.frame
    limits.check_decoded_size(frame.width, frame.height)
    shown = geometry.displayed_size(frame.width, frame.height, info.sample_aspect_ratio, info.orientation)
    limits.check_display_size(*shown)
    described = colour.describe(frame)
    picture = geometry.to_display(colour.to_srgb_image(frame), info.sample_aspect_ratio, info.orientation)
    return picture, described


@contextlib.contextmanager
def input_faults() -> Iterator[None]:
    """FFmpeg's errors while reading, decoding or converting are the input's: exit 3, not 1.

    Out of memory is not (the limits keep a job within its budget: running out is the worker's
    or its environment's fault).
    """
    try:
        yield
    except av.error.MemoryError:
        raise
    except av.error.FFmpegError as error:
        raise UnusableVideoError(f"the video data is corrupt: {error}", "corrupt") from error
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        # A damaged box size or offset sends the demuxer's seek before the start of the file.
        raise UnusableVideoError(f"the file points outside itself: {error}", "corrupt") from error


def _put_thumbnails(
    sink: Sink,
    names: OutputNames,
    options: Options,
    rendered: list[render.Rendered],
    metadata: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Write the thumbnails; their manifest entries."""
    listed = []
    for output in rendered:
        name = sink.put(
            names.thumbnail(options.extension, output.requested_width),
            output.body,
            content_type=output.content_type,
            cache_control=THUMBNAIL_CACHE_CONTROL,
            metadata=metadata,
        )
        listed.append(
            {
                "kind": "thumbnail",
                "name": name,
                "width": output.width,
                "height": output.height,
                "requested_width": output.requested_width,
                "format": output.format,
                "content_type": output.content_type,
                "bytes": len(output.body),
            }
        )
    return listed


def _put_extras(sink: Sink, outputs: list[Output], metadata: Mapping[str, str]) -> list[dict[str, Any]]:
    """Write stills, storyboard and preview; their manifest entries, `kind` first."""
    listed = []
    for extra in outputs:
        name = sink.put(
            extra.name,
            extra.body,
            content_type=extra.content_type,
            cache_control=THUMBNAIL_CACHE_CONTROL,
            metadata=metadata,
        )
        entry = {"kind": extra.entry["kind"], "name": name, **extra.entry}
        listed.append({**entry, "content_type": extra.content_type, "bytes": len(extra.body)})
    return listed


def _pick(video: Video, options: Options, source: Input, timer: StageTimer) -> Picked:
    at = options.at
    if at.kind == "auto":
        from thumbnailer import auto  # numpy, loaded only when frames are scored

        return auto.representative_frame(video, source.prefetch, timer.measure)
    if at.kind == "percent":
        if video.info.duration is None:
            picked = frame_at(video, 0.0, timer.measure, source.prefetch)
            picked.warnings.append(f"the duration is unknown: {at} cannot be placed; the first frame is used")
            return picked
        # The presentation ends at `duration`, exclusive: 100% means the last frame, not past it.
        seconds = min(video.info.duration * at.value / 100.0, video.info.duration - END_MARGIN_SECONDS)
    else:
        seconds = at.value
    if not (options.count or options.storyboard or options.preview):  # this one frame alone
        prefer_slice_threads(video, max(seconds, 0.0))
    return frame_at(video, max(seconds, 0.0), timer.measure, source.prefetch)


def write_failure(
    sink: Sink,
    names: OutputNames,
    *,
    source: Input | None,
    description: Mapping[str, Any],
    exit_code: int,
    reason: str,
    message: str,
    options: Options | None,
) -> dict[str, Any]:
    """The error manifest, at the manifest's name: a user looking for the thumbnail finds why."""
    document = manifest.failure(
        origin={"input": dict(description)},
        exit_code=exit_code,
        reason=reason,
        message=message,
        options=options,
        io=source.io_stats() if source else None,
    )
    sink.put(
        names.manifest(),
        manifest.dumps(document),
        content_type=manifest.CONTENT_TYPE,
        cache_control=MANIFEST_CACHE_CONTROL,
        metadata=source.output_metadata if source else {},
    )
    return document
