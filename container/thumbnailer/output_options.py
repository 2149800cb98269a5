"""The extra outputs' options: storyboard, stills count, animated preview (issue 13).

Each is one string, from the same three layers as the thumbnail's options (options.py):
`--storyboard`, `--count`, `--preview` on the command line; `thumbnail-storyboard`,
`thumbnail-count`, `thumbnail-preview` in S3 user metadata; THUMBNAIL_STORYBOARD,
THUMBNAIL_COUNT, THUMBNAIL_PREVIEW in the task's environment. Off (and 0) by default.

    storyboard  off | on | jpeg | webp, then optional `,width=N` (tile width, 32-320 px)
    count       0-100 stills, evenly spaced over the video
    preview     off | on | webp | gif, then optional `,start=T` (a time spec or auto),
                `,duration=S` (up to 10 s), `,fps=N` (1-30), `,width=N` (16-640 px)

The preview's limits are Mux's for animated GIF/WebP (end at most 10 s after start, at most
30 fps, at most 640 px wide).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from thumbnailer.errors import InvalidOptionsError

if TYPE_CHECKING:
    from thumbnailer.options import TimeSpec

SpriteFormat = Literal["jpeg", "webp"]
PreviewFormat = Literal["webp", "gif"]

OFF = frozenset({"off", "no", "false", "0", "none"})
ON = frozenset({"on", "yes", "true", "1"})
MAX_COUNT = 100
TILE_WIDTHS = (32, 320)
PREVIEW_WIDTHS = (16, 640)
PREVIEW_FPS = (1, 30)
PREVIEW_MAX_SECONDS = 10.0
_INTEGER = re.compile(r"^[0-9]{1,6}$")
_NUMBER = re.compile(r"^[0-9]{1,6}(?:\.[0-9]{1,6})?$")


@dataclass(frozen=True)
class StoryboardSpec:
    format: SpriteFormat = "jpeg"
    tile_width: int = 160

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else self.format

    def __str__(self) -> str:
        return f"{self.format},width={self.tile_width}"


@dataclass(frozen=True)
class PreviewSpec:
    format: PreviewFormat = "webp"
    start: TimeSpec | None = None  # None: the representative frame's time (auto)
    duration: float = 3.0
    fps: int = 10
    width: int = 320

    def __str__(self) -> str:
        start = "auto" if self.start is None else str(self.start)
        return f"{self.format},start={start},duration={self.duration:g},fps={self.fps},width={self.width}"


def parse_storyboard(raw: str, origin: str = "storyboard") -> StoryboardSpec | None:
    head, params = _split(raw, origin, "jpeg, webp, on or off")
    if head in OFF:
        return None
    formats: dict[str, SpriteFormat] = {"jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
    if head not in ON and head not in formats and head:
        raise InvalidOptionsError(f"{origin} {raw!r}: the storyboard format must be jpeg, webp, on or off")
    spec = StoryboardSpec(format=formats.get(head, "jpeg"))
    for name, value in params.items():
        if name != "width":
            raise InvalidOptionsError(f"{origin} {raw!r}: unknown setting {name!r} (only width=)")
        spec = StoryboardSpec(spec.format, _integer(value, TILE_WIDTHS, f"{origin} {raw!r}: width"))
    return spec


def parse_preview(raw: str, origin: str = "preview") -> PreviewSpec | None:
    head, params = _split(raw, origin, "webp, gif, on or off")
    if head in OFF:
        return None
    formats: dict[str, PreviewFormat] = {"webp": "webp", "gif": "gif"}
    if head not in ON and head not in formats and head:
        raise InvalidOptionsError(f"{origin} {raw!r}: the preview format must be webp, gif, on or off")
    values: dict[str, object] = {"format": formats.get(head, "webp")}
    label = f"{origin} {raw!r}:"
    for name, value in params.items():
        if name == "start":
            from thumbnailer.options import AUTO, parse_time_spec

            start = parse_time_spec(value, f"{label} start")
            values["start"] = None if start == AUTO else start
        elif name == "duration":
            values["duration"] = _seconds(value, f"{label} duration")
        elif name == "fps":
            values["fps"] = _integer(value, PREVIEW_FPS, f"{label} fps")
        elif name == "width":
            values["width"] = _integer(value, PREVIEW_WIDTHS, f"{label} width")
        else:
            raise InvalidOptionsError(f"{label} unknown setting {name!r} (start=, duration=, fps=, width=)")
    return PreviewSpec(**values)  # type: ignore[arg-type]


def parse_count(raw: str, origin: str = "count") -> int:
    text = raw.strip()
    if not _INTEGER.match(text) or int(text) > MAX_COUNT:
        raise InvalidOptionsError(f"{origin} {raw!r} is not a count: use whole numbers from 0 to {MAX_COUNT}")
    return int(text)


def _split(raw: str, origin: str, expected: str) -> tuple[str, dict[str, str]]:
    """`head,name=value,...` (lower case) -> head, {name: value}; the head may be omitted."""
    parts = [part.strip() for part in raw.strip().lower().split(",")]
    head = "" if "=" in parts[0] else parts.pop(0)
    params: dict[str, str] = {}
    for part in parts:
        name, equals, value = (p.strip() for p in part.partition("="))
        if not equals or not name or not value or name in params:
            raise InvalidOptionsError(
                f"{origin} {raw!r} is not valid: use {expected}, then name=value settings"
            )
        params[name] = value
    if head in OFF and params:
        raise InvalidOptionsError(f"{origin} {raw!r}: settings given for an output that is off")
    return head, params


def _integer(value: str, bounds: tuple[int, int], label: str) -> int:
    low, high = bounds
    if not _INTEGER.match(value) or not low <= int(value) <= high:
        raise InvalidOptionsError(f"{label} {value!r} must be a whole number from {low} to {high}")
    return int(value)


def _seconds(value: str, label: str) -> float:
    seconds = float(value) if _NUMBER.match(value) else math.nan
    if not 0 < seconds <= PREVIEW_MAX_SECONDS:
        raise InvalidOptionsError(
            f"{label} {value!r} must be seconds above 0 and at most {PREVIEW_MAX_SECONDS:g}"
        )
    return seconds
