"""The JSON manifest written beside the thumbnails (and the error manifest in its place)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from thumbnailer.colour import ColourInfo
from thumbnailer.options import Options
from thumbnailer.probe import SourceInfo

SCHEMA_VERSION = 1
CONTENT_TYPE = "application/json"
# Where the job ran, recorded at the top of every manifest: "cli" (python -m thumbnailer),
# "fargate" (the task, task.py) or "lambda" (the worker function, lambda_handler.py). Each entry
# point sets it for the job it runs; the CLI keeps the default.
RUNTIME: ContextVar[str] = ContextVar("thumbnail_runtime", default="cli")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def describe_source(info: SourceInfo, colour: ColourInfo | None) -> dict[str, Any]:
    sar = info.sample_aspect_ratio
    return {
        "codec": info.codec,
        "container": info.container_format,
        "duration": None if info.duration is None else round(info.duration, 6),
        "container_duration": None if info.container_duration is None else round(info.container_duration, 6),
        "frame_rate": None if info.frame_rate is None else round(info.frame_rate, 3),
        "coded_width": info.coded_width,
        "coded_height": info.coded_height,
        "sample_aspect_ratio": f"{sar.numerator}:{sar.denominator}",
        "display_width": info.display_width,
        "display_height": info.display_height,
        # Degrees clockwise, applied after any mirroring: ffprobe's rotation (counter-clockwise) negated.
        "rotation": _degrees(info.orientation.clockwise),
        "mirrored": info.orientation.mirrored,
        "hdr": colour.hdr if colour else None,
        "colour": (
            {"matrix": colour.matrix, "range": colour.range, "transfer": colour.transfer} if colour else None
        ),
    }


def _degrees(clockwise: float) -> int | float:
    """A whole number of degrees (every multiple of 90) as an integer; a free angle as it is."""
    return int(clockwise) if float(clockwise).is_integer() else clockwise


def describe_options(options: Options) -> dict[str, Any]:
    described: dict[str, Any] = {
        "at": str(options.at),
        "format": options.format,
        "widths": list(options.widths),
    }
    # The extra outputs (issue 13), only when asked for: a plain job's manifest is as before.
    if options.storyboard is not None:
        described["storyboard"] = str(options.storyboard)
    if options.count:
        described["count"] = options.count
    if options.preview is not None:
        described["preview"] = str(options.preview)
    return described


def success(
    *,
    origin: Mapping[str, Any],
    source: Mapping[str, Any],
    options: Options,
    frame_time: float,
    thumbnails: Sequence[Mapping[str, Any]],
    warnings: Sequence[str],
    io: Mapping[str, Any],
    timings_ms: Mapping[str, float],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "ok",
        "created_at": _now(),
        "runtime": RUNTIME.get(),
        **origin,
        "source": dict(source),
        "options": describe_options(options),
        "frame": {"time": round(frame_time, 6), "chosen_by": "auto" if options.at.kind == "auto" else "time"},
        "thumbnails": list(thumbnails),
        "warnings": list(warnings),
        "io": dict(io),
        "timings_ms": dict(timings_ms),
    }


def failure(
    *,
    origin: Mapping[str, Any],
    exit_code: int,
    reason: str,
    message: str,
    options: Options | None = None,
    io: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "error",
        "created_at": _now(),
        "runtime": RUNTIME.get(),
        **origin,
        "error": {"exit_code": exit_code, "reason": reason, "message": message},
        "options": describe_options(options) if options else None,
        "thumbnails": [],
        "io": dict(io or {}),
    }


def dumps(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
