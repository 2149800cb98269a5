"""Thumbnail options: the time spec, format and widths, parsed once and validated.

Options come in layers (task defaults from the environment, then the object's S3 user
metadata, then command-line flags); each raw value is checked where it comes from, so a
bad one is reported with its origin and its value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from thumbnailer.errors import InvalidOptionsError
from thumbnailer.output_options import (
    PreviewSpec,
    StoryboardSpec,
    parse_count,
    parse_preview,
    parse_storyboard,
)

ImageFormat = Literal["jpeg", "png", "webp"]
FORMATS: tuple[ImageFormat, ...] = ("jpeg", "png", "webp")
FORMAT_ALIASES: dict[str, ImageFormat] = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "webp": "webp"}
MAX_WIDTH = 7680  # 8K: far beyond any thumbnail, small enough to bound memory
MAX_WIDTHS = 8

# Keys of each option in the environment and in S3 user metadata (lower case, as S3 returns them).
ENV_KEYS = {
    "at": "THUMBNAIL_AT",
    "format": "THUMBNAIL_FORMAT",
    "widths": "THUMBNAIL_WIDTHS",
    "storyboard": "THUMBNAIL_STORYBOARD",
    "count": "THUMBNAIL_COUNT",
    "preview": "THUMBNAIL_PREVIEW",
}
METADATA_KEYS = {
    "at": "thumbnail-at",
    "format": "thumbnail-format",
    "widths": "thumbnail-widths",
    "storyboard": "thumbnail-storyboard",
    "count": "thumbnail-count",
    "preview": "thumbnail-preview",
}

# ASCII digits only: `\d` alone also matches other scripts' digits (Arabic-Indic and others).
# Digit runs that int() converts are bounded: past 4300 digits it raises instead of converting.
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$", re.ASCII)
_TIMECODE = re.compile(r"^(?:(\d{1,9}):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$", re.ASCII)
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$", re.ASCII)
_WIDTH = re.compile(r"^[0-9]{1,9}$")


@dataclass(frozen=True)
class TimeSpec:
    """Where to take the thumbnail: `auto`, a time in seconds, or a percentage of the duration."""

    kind: Literal["auto", "seconds", "percent"]
    value: float = 0.0

    def __str__(self) -> str:
        if self.kind == "auto":
            return "auto"
        return f"{self.value:g}%" if self.kind == "percent" else f"{self.value:g}"


AUTO = TimeSpec("auto")


@dataclass(frozen=True)
class Options:
    at: TimeSpec = AUTO
    format: ImageFormat = "jpeg"
    widths: tuple[int, ...] = ()  # empty: one thumbnail at the displayed size
    # The extra outputs (output_options.py), off by default.
    storyboard: StoryboardSpec | None = None
    count: int = 0  # stills
    preview: PreviewSpec | None = None

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else self.format


def parse_time_spec(raw: str, origin: str = "time") -> TimeSpec:
    """`92`, `92.5`, `01:32`, `00:01:32.5`, `25%` or `auto`; anything else is invalid."""
    text = raw.strip().lower()
    if text == "auto":
        return AUTO
    if _SECONDS.match(text):
        return TimeSpec("seconds", _finite(float(text), raw, origin))
    if match := _PERCENT.match(text):
        percent = _finite(float(match.group(1)), raw, origin)
        if percent > 100:
            raise InvalidOptionsError(f"{origin} {raw!r}: a percentage must be between 0 and 100")
        return TimeSpec("percent", percent)
    if match := _TIMECODE.match(text):
        hours, minutes, seconds = int(match.group(1) or 0), int(match.group(2)), float(match.group(3))
        if (match.group(1) is not None and minutes >= 60) or seconds >= 60:
            raise InvalidOptionsError(f"{origin} {raw!r}: minutes and seconds of a timecode must be below 60")
        return TimeSpec("seconds", _finite(hours * 3600 + minutes * 60 + seconds, raw, origin))
    raise InvalidOptionsError(
        f"{origin} {raw!r} is not a time: use seconds (92.5), a timecode (01:32, 00:01:32.5), "
        "a percentage (25%) or auto; negative times are invalid"
    )


def _finite(value: float, raw: str, origin: str) -> float:
    if not math.isfinite(value):
        raise InvalidOptionsError(f"{origin} {raw!r} is not a finite time")
    return value


def parse_format(raw: str, origin: str = "format") -> ImageFormat:
    try:
        return FORMAT_ALIASES[raw.strip().lower()]
    except KeyError:
        raise InvalidOptionsError(f"{origin} {raw!r} is not a format: use jpeg, png or webp") from None


def parse_widths(raw: str | list[str] | tuple[str, ...], origin: str = "widths") -> tuple[int, ...]:
    """Comma-separated (or repeated) positive widths; empty means the displayed size."""
    parts = raw.split(",") if isinstance(raw, str) else [p for item in raw for p in item.split(",")]
    widths: list[int] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        # Not str.isdigit(): it accepts "²", which int() then refuses.
        if not _WIDTH.match(part) or not 1 <= int(part) <= MAX_WIDTH:
            raise InvalidOptionsError(
                f"{origin} {part!r} is not a width: use whole pixels from 1 to {MAX_WIDTH}"
            )
        if int(part) not in widths:
            widths.append(int(part))
    if len(widths) > MAX_WIDTHS:
        raise InvalidOptionsError(f"{origin} {raw!r}: at most {MAX_WIDTHS} widths")
    return tuple(sorted(widths))


def apply_layer(base: Options, values: Mapping[str, str | None], labels: Mapping[str, str]) -> Options:
    """Override `base` with the raw values present in one layer (keys `at`, `format`, `widths`,
    and `storyboard`, `count`, `preview`).

    `labels` names where each value came from, for error messages (`metadata thumbnail-at`).
    """
    at, fmt, widths = base.at, base.format, base.widths
    if (raw := values.get("at")) is not None and raw.strip():
        at = parse_time_spec(raw, labels["at"])
    if (raw := values.get("format")) is not None and raw.strip():
        fmt = parse_format(raw, labels["format"])
    if (raw := values.get("widths")) is not None and raw.strip():
        widths = parse_widths(raw, labels["widths"])
    return _apply_extras(Options(at, fmt, widths, base.storyboard, base.count, base.preview), values, labels)


def _apply_extras(base: Options, values: Mapping[str, str | None], labels: Mapping[str, str]) -> Options:
    """The storyboard, stills count and preview of one layer, over `base`."""
    storyboard, count, preview = base.storyboard, base.count, base.preview
    if (raw := values.get("storyboard")) is not None and raw.strip():
        storyboard = parse_storyboard(raw, labels.get("storyboard", "storyboard"))
    if (raw := values.get("count")) is not None and raw.strip():
        count = parse_count(raw, labels.get("count", "count"))
    if (raw := values.get("preview")) is not None and raw.strip():
        preview = parse_preview(raw, labels.get("preview", "preview"))
    return Options(base.at, base.format, base.widths, storyboard, count, preview)


def from_environment(env: Mapping[str, str]) -> Options:
    """The task's defaults (THUMBNAIL_AT, THUMBNAIL_FORMAT, THUMBNAIL_WIDTHS, and the extra outputs')."""
    labels = {name: f"setting {var}" for name, var in ENV_KEYS.items()}
    return apply_layer(Options(), {name: env.get(var) for name, var in ENV_KEYS.items()}, labels)


def with_metadata(base: Options, metadata: Mapping[str, str]) -> Options:
    """Per-video overrides from S3 user metadata (`x-amz-meta-thumbnail-at` ...)."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    layer = {name: lowered.get(key) for name, key in METADATA_KEYS.items()}
    labels = {name: f"metadata {key}" for name, key in METADATA_KEYS.items()}
    return apply_layer(base, layer, labels)
