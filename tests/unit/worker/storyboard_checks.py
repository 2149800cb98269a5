"""Reading the extra outputs back (issue 13): WebVTT cues, sprite tiles, animation frames."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from PIL import Image, ImageSequence

_TIME = r"(\d+):(\d{2}):(\d{2})\.(\d{3})"
_CUE = re.compile(rf"^{_TIME} --> {_TIME}\n(.+)#xywh=(\d+),(\d+),(\d+),(\d+)$", re.M)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    sprite: str  # as written, relative to the VTT
    box: tuple[int, int, int, int]  # x, y, w, h


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_vtt(text: str) -> list[Cue]:
    assert text.startswith("WEBVTT\n"), text[:20]
    cues = []
    for match in _CUE.finditer(text):
        g = match.groups()
        box = (int(g[9]), int(g[10]), int(g[11]), int(g[12]))
        cues.append(Cue(_seconds(*g[0:4]), _seconds(*g[4:8]), g[8], box))
    assert cues, "no cues"
    return cues


def check_contiguous(cues: list[Cue], duration: float) -> None:
    """From 0 to the end of the video, each cue starting where the one before ends."""
    assert cues[0].start == 0.0
    for before, after in itertools.pairwise(cues):
        assert before.end == after.start and before.start < before.end
    assert abs(cues[-1].end - duration) <= 0.0015 and cues[-1].start < cues[-1].end


def tiles(out: Path, vtt_name: str) -> list[tuple[Cue, Image.Image]]:
    """Each cue with its tile cropped from the sprite the cue names (relative to the VTT)."""
    cues = parse_vtt((out / vtt_name).read_text(encoding="utf-8"))
    sprites: dict[str, Image.Image] = {}
    found = []
    for cue in cues:
        if cue.sprite not in sprites:
            sprites[cue.sprite] = Image.open(out / unquote(cue.sprite)).convert("RGB")
        x, y, w, h = cue.box
        found.append((cue, sprites[cue.sprite].crop((x, y, x + w, y + h))))
    return found


def animation_frames(path: Path) -> list[tuple[Image.Image, int]]:
    """Each frame of an animated WebP or GIF with its duration in ms."""
    with Image.open(path) as image:
        return [
            (frame.convert("RGB"), int(frame.info.get("duration", 0)))
            for frame in ImageSequence.Iterator(image)
        ]


def undisplay(picture: Image.Image, ccw: int, hflip: bool, coded: tuple[int, int]) -> Image.Image:
    """The coded picture back from a displayed one (rotated `ccw` after mirroring, stretched)."""
    if hflip:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return picture.rotate(-ccw, expand=True).resize(coded, Image.Resampling.LANCZOS)
