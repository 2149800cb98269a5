"""Stills: N exact frames evenly spaced over the video, each at the middle of its Nth of the duration.

Times are written to the millisecond, so the manifest's `time` gives back the same frame.
The stills take the thumbnail's format; with widths, the largest (never upscaled).
"""

from __future__ import annotations

from thumbnailer import render
from thumbnailer.extract import Measure, Prefetch, frame_at, no_measure
from thumbnailer.frames import Output, display_picture
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options
from thumbnailer.probe import Video


def still_times(duration: float, count: int) -> list[float]:
    """The middle of each of `count` equal parts of the duration, to the millisecond."""
    return [round(duration * (i + 0.5) / count, 3) for i in range(count)]


def make_stills(
    video: Video,
    duration: float,
    options: Options,
    names: OutputNames,
    *,
    measure: Measure = no_measure,
    prefetch: Prefetch | None = None,
) -> list[Output]:
    widths = options.widths[-1:]  # the largest, or none: the displayed size
    outputs = []
    for number, seconds in enumerate(still_times(duration, options.count), start=1):
        picked = frame_at(video, seconds, measure, prefetch)
        (rendered,) = render.render(display_picture(video, picked.frame), options.format, widths)
        outputs.append(
            Output(
                names.still(number, options.count, options.extension),
                rendered.body,
                rendered.content_type,
                {
                    "kind": "still",
                    "index": number,
                    "time": seconds,
                    "frame_time": round(picked.time, 6),
                    "width": rendered.width,
                    "height": rendered.height,
                    "format": rendered.format,
                },
                [*picked.warnings, *rendered.warnings],
            )
        )
    return outputs
