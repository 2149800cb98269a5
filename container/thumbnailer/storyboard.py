"""Storyboard: one sprite of small tiles, a WebVTT file mapping time ranges to tiles, and a JSON map.

Each cue runs from its tile's time to the next tile's (the first from 0, the last to the end of
the video), and its tile shows the frame a player displays at the cue's start. Cue starts are put
on keyframes where one lies near the evenly spaced time (within half an interval): a keyframe's
packet decodes alone, so the storyboard reads the moov box and those packets only, fetched
together as exact byte ranges (as auto.py does). Where no keyframe is near (GOPs longer than
the interval, short clips) the tile is the exact frame at the even time (extract.frame_at).

Tile count as Mux: 50 under 15 minutes, 100 from 15 minutes, at least MIN_INTERVAL_S apart.
Cue times are written to the millisecond, rounded up from the keyframe's presentation time, so
the frame shown at the written time is the keyframe itself.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from PIL import Image

from thumbnailer.auto import _keyframe_at, _seek_targets
from thumbnailer.extract import Measure, Picked, Prefetch, frame_at, no_measure
from thumbnailer.frames import Output, ceil_ms, display_picture, resized
from thumbnailer.naming import OutputNames
from thumbnailer.output_options import StoryboardSpec
from thumbnailer.probe import Video
from thumbnailer.render import CONTENT_TYPES, encode

LONG_VIDEO_S = 15 * 60
TILES_SHORT, TILES_LONG = 50, 100
MIN_INTERVAL_S = 1.0
COLUMNS = 10
PREFETCH_BATCH_BYTES = 8 << 20
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Tile:
    start_ms: int
    frame_time: float  # presentation time of the frame shown
    keyframe: bool  # decoded from its keyframe's packet alone
    picture: Image.Image  # already tile-sized: a hundred decoded 4K frames would not fit in memory


def interval_seconds(duration: float) -> float:
    tiles = TILES_SHORT if duration < LONG_VIDEO_S else TILES_LONG
    return max(duration / tiles, MIN_INTERVAL_S)


def even_times_ms(duration: float) -> list[int]:
    """Where tiles would start with no keyframes to follow: 0, one interval, ... before the end."""
    step = interval_seconds(duration)
    end_ms = math.floor(duration * 1000)
    count = max(1, math.ceil(duration / step - 1e-9))
    return sorted({round(i * step * 1000) for i in range(count) if round(i * step * 1000) < end_ms} | {0})


def make_tiles(
    video: Video,
    duration: float,
    size: tuple[int, int],
    measure: Measure = no_measure,
    prefetch: Prefetch | None = None,
) -> list[Tile]:
    """One tile per even time, `size` pixels: the nearest keyframe's, or the exact frame at that time."""
    wanted = even_times_ms(duration)
    half = interval_seconds(duration) * 500
    chosen = _nearest_keyframes(video, wanted, half, duration)
    keyframes = [keyframe for _, keyframe in sorted(chosen.items())]
    targets = dict(zip(sorted(chosen), _seek_targets(video, keyframes), strict=True))
    tiles: dict[int, Tile] = {}
    for batch in _batches(wanted, chosen):
        keyframe_ranges = [(chosen[t][1], chosen[t][1] + chosen[t][2]) for t in batch if t in chosen]
        if prefetch is not None and (ranges := keyframe_ranges):
            with measure("prefetch"):
                prefetch(sorted({(start, end) for start, end in ranges if end > start >= 0}))
        for at_ms in batch:
            found = (
                _keyframe_at_start(video, targets[at_ms], at_ms, half, measure) if at_ms in targets else None
            )
            start_ms, picked = found or (at_ms, frame_at(video, at_ms / 1000, measure, prefetch))
            if start_ms not in tiles:
                picture = resized(display_picture(video, picked.frame), size)
                tiles[start_ms] = Tile(start_ms, picked.time, found is not None, picture)
    return [tiles[start] for start in sorted(tiles)]


def _batches(wanted: list[int], chosen: dict[int, tuple[int, int, int]]) -> list[list[int]]:
    """The even times in order, cut where their keyframes' bytes pass PREFETCH_BATCH_BYTES: the
    reader's cache holds what one prefetch fetches (16 MiB), not a hundred 1080p keyframes."""
    batches: list[list[int]] = [[]]
    held = 0
    for at_ms in wanted:
        size = chosen[at_ms][2] if at_ms in chosen else 0
        if batches[-1] and held + size > PREFETCH_BATCH_BYTES:
            batches.append([])
            held = 0
        batches[-1].append(at_ms)
        held += size
    return batches


def _nearest_keyframes(
    video: Video, wanted_ms: list[int], half_ms: float, duration: float
) -> dict[int, tuple[int, int, int]]:
    """Even time -> the index keyframe nearest to it (by decode time), when within `half_ms`."""
    # Decode times: with B-frames the first keyframe's is before 0 though it is shown at 0.
    keyframes = sorted(k for k in video.keyframes() if video.seconds(k[0]) < duration)
    times = [video.seconds(k[0]) * 1000 for k in keyframes]
    chosen: dict[int, tuple[int, int, int]] = {}
    for at_ms in wanted_ms:
        i = bisect.bisect_left(times, at_ms)
        near = min(
            (j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - at_ms), default=None
        )
        if (
            near is not None
            and abs(times[near] - at_ms) <= half_ms
            and keyframes[near] not in chosen.values()
        ):
            chosen[at_ms] = keyframes[near]
    return chosen


def _keyframe_at_start(
    video: Video, seek_to: int, at_ms: int, half_ms: float, measure: Measure
) -> tuple[int, Picked] | None:
    """The keyframe and its own presentation time, as the cue's start; None if it does not decode
    or is too far (its presentation time, known once decoded, can differ from the decode time)."""
    picked = _keyframe_at(video, seek_to, measure)
    if picked is None or picked.time < 0:
        return None
    start_ms = ceil_ms(picked.time)
    if abs(start_ms - at_ms) > half_ms or (at_ms == 0 and start_ms != 0):
        return None  # the first cue starts at 0 and must show the frame shown at 0
    return start_ms, picked


def build(
    tiles: list[Tile], size: tuple[int, int], duration: float, spec: StoryboardSpec, names: OutputNames
) -> list[Output]:
    """The sprite, the WebVTT file and the JSON map, in that order."""
    columns = min(len(tiles), COLUMNS)
    rows = math.ceil(len(tiles) / columns)
    sprite = Image.new("RGB", (size[0] * columns, size[1] * rows))
    for i, tile in enumerate(tiles):
        sprite.paste(tile.picture, _origin(i, size))
    sprite_name, vtt_name, json_name = (
        names.storyboard(spec.extension),
        names.storyboard_vtt(),
        names.storyboard_json(),
    )
    relative = quote(sprite_name.rsplit("/", 1)[-1])  # beside the VTT, so relative to it
    end_ms = max(math.floor(duration * 1000), tiles[-1].start_ms + 1)
    cues = [(tile.start_ms, nxt.start_ms) for tile, nxt in itertools.pairwise(tiles)]
    cues.append((tiles[-1].start_ms, end_ms))
    grid = {
        "tile_width": size[0],
        "tile_height": size[1],
        "columns": columns,
        "rows": rows,
        "tiles": len(tiles),
    }
    vtt = _vtt(cues, relative, size).encode()
    vtt_relative = quote(vtt_name.rsplit("/", 1)[-1])
    document = _json_map(
        tiles, cues=cues, sprite=relative, vtt=vtt_relative, size=size, grid=grid, duration=duration
    )
    body = encode(sprite, spec.format)
    return [
        Output(
            sprite_name,
            body,
            CONTENT_TYPES[spec.format],
            {
                "kind": "storyboard",
                "format": spec.format,
                "width": sprite.width,
                "height": sprite.height,
                **grid,
                "interval": round(interval_seconds(duration), 6),
                "keyframe_tiles": sum(tile.keyframe for tile in tiles),
            },
        ),
        Output(vtt_name, vtt, VTT_CONTENT_TYPE, {"kind": "storyboard_vtt", **grid}),
        Output(json_name, document, JSON_CONTENT_TYPE, {"kind": "storyboard_json", **grid}),
    ]


def _origin(index: int, size: tuple[int, int]) -> tuple[int, int]:
    return (index % COLUMNS) * size[0], (index // COLUMNS) * size[1]


def vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _vtt(cues: list[tuple[int, int]], sprite: str, size: tuple[int, int]) -> str:
    lines = ["WEBVTT", ""]
    for i, (start, end) in enumerate(cues):
        x, y = _origin(i, size)
        lines += [f"{vtt_time(start)} --> {vtt_time(end)}", f"{sprite}#xywh={x},{y},{size[0]},{size[1]}", ""]
    return "\n".join(lines)


def _json_map(
    tiles: list[Tile],
    *,
    cues: list[tuple[int, int]],
    sprite: str,
    vtt: str,
    size: tuple[int, int],
    grid: dict[str, int],
    duration: float,
) -> bytes:
    """Mux's storyboard JSON shape (url, tile_width, tile_height, duration, tiles of start, x, y)
    with each tile's end, the time of the frame it shows, and whether it is a keyframe."""
    entries: list[dict[str, Any]] = []
    for i, (tile, (start, end)) in enumerate(zip(tiles, cues, strict=True)):
        x, y = _origin(i, size)
        entries.append(
            {
                "start": start / 1000,
                "end": end / 1000,
                "x": x,
                "y": y,
                "frame_time": round(tile.frame_time, 6),
                "keyframe": tile.keyframe,
            }
        )
    document = {"url": sprite, "vtt": vtt, **grid, "duration": round(duration, 6), "tiles": entries}
    return (json.dumps(document, indent=2) + "\n").encode()
