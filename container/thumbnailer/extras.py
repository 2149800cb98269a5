"""The extra outputs of issue 13, made from the opened video after the thumbnail: stills, the
storyboard (sprite, WebVTT, JSON map) and the animated preview, each only when asked for.

Timings: one stage per output (`stills`, `storyboard`, `preview`) and its reads and decodes as
`<output>_prefetch`, `<output>_seek`, `<output>_decode`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from thumbnailer import preview, stills, storyboard
from thumbnailer.extract import Measure, Picked, Prefetch
from thumbnailer.frames import Output, scaled_size
from thumbnailer.logs import StageTimer
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options
from thumbnailer.output_options import PreviewSpec
from thumbnailer.probe import Video


def check_names(options: Options, names: OutputNames) -> None:
    """Every extra output's name, so that one S3 would refuse fails before any read."""
    if options.storyboard is not None:
        names.storyboard(options.storyboard.extension)
        names.storyboard_vtt()
        names.storyboard_json()
    if options.count:
        names.still(options.count, options.count, options.extension)
    if options.preview is not None:
        names.preview(options.preview.format)


def make(
    video: Video,
    options: Options,
    names: OutputNames,
    *,
    picked: Picked,
    prefetch: Prefetch | None,
    timer: StageTimer,
) -> tuple[list[Output], list[str]]:
    """The outputs asked for, and warnings about those that could not be made."""
    outputs: list[Output] = []
    warnings: list[str] = []
    duration = video.info.duration
    if (options.count or options.storyboard) and duration is None:
        warnings.append("the duration is unknown: no stills or storyboard can be spaced over it")
    if options.count and duration is not None:
        with timer.stage("stills"):
            outputs += stills.make_stills(
                video, duration, options, names, measure=_measure(timer, "stills"), prefetch=prefetch
            )
    if options.storyboard is not None and duration is not None:
        with timer.stage("storyboard"):
            measure = _measure(timer, "storyboard")
            size = scaled_size(video, options.storyboard.tile_width)
            tiles = storyboard.make_tiles(video, duration, size, measure, prefetch)
            outputs += storyboard.build(tiles, size, duration, options.storyboard, names)
    if options.preview is not None:
        with timer.stage("preview"):
            measure = _measure(timer, "preview")
            start = _preview_start(
                video, options, options.preview, picked=picked, measure=measure, prefetch=prefetch
            )
            outputs.append(
                preview.make_preview(video, start, options.preview, names, measure=measure, prefetch=prefetch)
            )
    return outputs, warnings


def _measure(timer: StageTimer, output: str) -> Measure:
    def measure(name: str) -> AbstractContextManager[None]:
        return timer.measure(f"{output}_{name}")

    return measure


def _preview_start(
    video: Video,
    options: Options,
    spec: PreviewSpec,
    *,
    picked: Picked,
    measure: Measure,
    prefetch: Prefetch | None,
) -> float:
    """The preview's start: as asked, or the representative frame's time (the thumbnail's, when
    the thumbnail was chosen by `auto`)."""
    start = spec.start
    if start is None:
        if options.at.kind == "auto":
            return picked.time
        from thumbnailer import auto

        return auto.representative_frame(video, prefetch, measure).time
    if start.kind == "percent":
        return (video.info.duration or 0.0) * start.value / 100.0
    return start.value
