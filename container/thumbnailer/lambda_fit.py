"""Whether a job suits the worker function, decided from what the probe gives (README "Where a job runs").

The worker function (Lambda) is sized for the common job: one thumbnail of a video up to 4K. A
job it is not sized for is handed to a Fargate task after the probe, before any frame is decoded,
instead of failing there. The rule, from the probe and the object's size:

- duration above LAMBDA_MAX_VIDEO_SECONDS (default 4 h): the index the demuxer keeps grows with
  the duration (2.3 MB of moov for 40 minutes of 1080p, docs/benchmark.md), and so do its memory
  and the time to read it;
- coded pixels above LAMBDA_MAX_PIXELS (default 4096 x 2304, 9.4 MP): a decoded frame, its RGB
  copy and the encoder's buffers grow with the pixels (8K is 4x 4K);
- `auto` on a source whose average bit rate (object size x 8 / duration) is above
  LAMBDA_MAX_AUTO_MBITS (default 100 Mbit/s, camera originals and intermediates): `auto` fetches
  and decodes 20 keyframes, whose size grows with the bit rate.

Storyboards (many frames per video) will add their own line here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from thumbnailer.errors import InvalidOptionsError
from thumbnailer.options import Options
from thumbnailer.probe import SourceInfo

MAX_VIDEO_SECONDS = "LAMBDA_MAX_VIDEO_SECONDS"
MAX_PIXELS = "LAMBDA_MAX_PIXELS"
MAX_AUTO_MBITS = "LAMBDA_MAX_AUTO_MBITS"
DEFAULTS = {MAX_VIDEO_SECONDS: 4 * 3600.0, MAX_PIXELS: 4096.0 * 2304, MAX_AUTO_MBITS: 100.0}


@dataclasses.dataclass(frozen=True)
class Limits:
    max_video_seconds: float
    max_pixels: float
    max_auto_mbits: float

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Limits:
        """The limits, each a positive number; a bad value fails fast, naming the variable."""
        values = {}
        for name, default in DEFAULTS.items():
            text = env.get(name, "").strip()
            try:
                value = float(text) if text else default
            except ValueError:
                value = -1.0
            if not value > 0:
                raise InvalidOptionsError(f"setting {name} {text!r} must be a positive number")
            values[name] = value
        return cls(values[MAX_VIDEO_SECONDS], values[MAX_PIXELS], values[MAX_AUTO_MBITS])


def too_heavy(info: SourceInfo, options: Options, size: int | None, limits: Limits) -> str | None:
    """Why the job should run in a Fargate task instead, or None when the function can take it."""
    if info.duration is not None and info.duration > limits.max_video_seconds:
        return f"duration {info.duration:.0f} s is above {limits.max_video_seconds:g} s"
    pixels = info.coded_width * info.coded_height
    if pixels > limits.max_pixels:
        return f"{info.coded_width}x{info.coded_height} is above {limits.max_pixels:g} pixels"
    if options.at.kind == "auto" and size and info.duration:
        mbits = size * 8 / info.duration / 1e6
        if mbits > limits.max_auto_mbits:
            return f"auto on {mbits:.0f} Mbit/s is above {limits.max_auto_mbits:g} Mbit/s"
    return None
