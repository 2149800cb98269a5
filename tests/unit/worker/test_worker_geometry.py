"""Geometry as a player shows it: display matrix rotation/mirroring and non-square pixels."""

from __future__ import annotations

import json
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.unit.worker.synthetic import QUADRANTS, make_clip, quadrant_image
from thumbnailer.__main__ import main as cli_main
from thumbnailer.geometry import displayed_size, orientation_from_matrix, sar_or_square

T = Image.Transpose


def _matrix(a: int, b: int, c: int, d: int) -> bytes:
    return struct.pack("<9i", a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30)


@pytest.mark.parametrize(
    ("abcd", "transpose", "clockwise", "mirrored"),
    [
        ((1, 0, 0, 1), None, 0, False),
        ((0, 1, -1, 0), T.ROTATE_270, 90, False),  # iPhone portrait: ffprobe rotation -90
        ((-1, 0, 0, -1), T.ROTATE_180, 180, False),
        ((0, -1, 1, 0), T.ROTATE_90, 270, False),
        ((-1, 0, 0, 1), T.FLIP_LEFT_RIGHT, 0, True),
        ((1, 0, 0, -1), T.FLIP_TOP_BOTTOM, 180, True),
        ((0, 1, 1, 0), T.TRANSPOSE, 270, True),
        ((0, -1, -1, 0), T.TRANSVERSE, 90, True),
    ],
)
def test_display_matrix_to_orientation(
    abcd: tuple[int, int, int, int], transpose: Image.Transpose | None, clockwise: int, mirrored: bool
) -> None:
    orientation = orientation_from_matrix(_matrix(*abcd))
    assert (orientation.transpose, orientation.clockwise, orientation.mirrored) == (
        transpose,
        clockwise,
        mirrored,
    )
    # The Pillow operation maps the coded x and y axes where the matrix says.
    a, b, _, _ = abcd
    probe = Image.new("L", (3, 3))
    probe.putpixel((2, 1), 255)  # right of centre: direction (1, 0)
    moved = probe.transpose(transpose) if transpose is not None else probe
    x, y = next((x, y) for x in range(3) for y in range(3) if moved.getpixel((x, y)))
    assert (x - 1, y - 1) == (a, b)


def test_displayed_size_applies_sar_then_rotation() -> None:
    quarter = orientation_from_matrix(_matrix(0, 1, -1, 0))
    assert displayed_size(320, 240, Fraction(4, 3), orientation_from_matrix(None)) == (427, 240)
    assert displayed_size(320, 240, Fraction(4, 3), quarter) == (240, 427)
    assert sar_or_square(Fraction(0)) == 1 and sar_or_square(None) == 1


def _run_cli(video: Path, out: Path, *extra: str) -> tuple[int, dict[str, object]]:
    code = cli_main([str(video), "--out", str(out), "--format", "png", *extra])
    manifest = json.loads((out / f"{video.name}.json").read_text())
    return code, manifest


def _colour_at(image: Image.Image, fx: float, fy: float) -> tuple[int, ...]:
    return tuple(
        int(v) for v in np.asarray(image.convert("RGB"))[int(fy * image.height), int(fx * image.width)]
    )


def _close(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return max(abs(a - e) for a, e in zip(actual, expected, strict=True)) <= 40


@pytest.mark.parametrize(("ccw", "hflip"), [(90, False), (180, False), (270, False), (0, True), (90, True)])
def test_rotated_clip_shows_as_a_player_shows_it(tmp_path: Path, ccw: int, hflip: bool) -> None:
    clip = make_clip(
        tmp_path / "r.mp4", frames=3, width=96, height=64, pattern="quadrants", rotation=ccw, hflip=hflip
    )
    code, manifest = _run_cli(clip.path, tmp_path / "out")
    assert code == 0
    # Expected picture, independently: numpy rotates counter-clockwise, then mirror (PyAV's order).
    expected = np.rot90(quadrant_image(96, 64), k=ccw // 90)
    if hflip:
        expected = np.fliplr(expected)
    shown = Image.open(tmp_path / "out" / "r.mp4.png")
    assert shown.size == (expected.shape[1], expected.shape[0])
    for fx, fy in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]:
        want = tuple(int(v) for v in expected[int(fy * expected.shape[0]), int(fx * expected.shape[1])])
        assert _close(_colour_at(shown, fx, fy), want), (ccw, hflip, fx, fy)
    assert manifest["source"]["mirrored"] is hflip  # type: ignore[index]
    # Degrees clockwise, an integer. Unmirrored, ffprobe's rotation (counter-clockwise, as PyAV
    # sets it) negated; mirrored, the manifest mirrors first, so the same angle turns the other way.
    rotation = manifest["source"]["rotation"]  # type: ignore[index]
    assert type(rotation) is int and rotation == (ccw if hflip else -ccw) % 360


def test_anamorphic_clip_is_stretched(tmp_path: Path) -> None:
    clip = make_clip(
        tmp_path / "a.mp4", frames=3, width=96, height=64, pattern="quadrants", sar=Fraction(2, 1)
    )
    code, manifest = _run_cli(clip.path, tmp_path / "out")
    assert code == 0
    shown = Image.open(tmp_path / "out" / "a.mp4.png")
    assert shown.size == (192, 64)
    assert manifest["source"]["sample_aspect_ratio"] == "2:1"  # type: ignore[index]
    # The quadrant boundary is still in the middle: the whole picture was stretched, not padded.
    assert _close(_colour_at(shown, 0.45, 0.25), QUADRANTS["top_left"])
    assert _close(_colour_at(shown, 0.55, 0.25), QUADRANTS["top_right"])


def test_widths_keep_the_aspect_ratio_and_never_upscale(tmp_path: Path) -> None:
    clip = make_clip(
        tmp_path / "w.mp4", frames=3, width=96, height=64, pattern="quadrants", sar=Fraction(2, 1)
    )
    code, manifest = _run_cli(clip.path, tmp_path / "out", "--width", "48", "--width", "400")
    assert code == 0
    files = {t["requested_width"]: t for t in manifest["thumbnails"]}  # type: ignore[attr-defined]
    assert Image.open(tmp_path / "out" / "w.mp4.48w.png").size == (48, 16)
    assert Image.open(tmp_path / "out" / "w.mp4.400w.png").size == (192, 64)
    assert files[400]["width"] == 192
    assert any("not upscaled" in w for w in manifest["warnings"])  # type: ignore[attr-defined]
