"""Geometry as a player shows it: display matrix (rotation, mirroring) and pixel aspect ratio."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction

from PIL import Image

_T = Image.Transpose
# Where the display matrix sends the coded image's x and y unit vectors (image y points down),
# and the Pillow operation doing the same.
_AXIS_MAPS: dict[tuple[tuple[int, int], tuple[int, int]], tuple[_T | None, int, bool]] = {
    ((1, 0), (0, 1)): (None, 0, False),
    ((-1, 0), (0, 1)): (_T.FLIP_LEFT_RIGHT, 0, True),
    ((1, 0), (0, -1)): (_T.FLIP_TOP_BOTTOM, 180, True),
    ((-1, 0), (0, -1)): (_T.ROTATE_180, 180, False),
    ((0, 1), (-1, 0)): (_T.ROTATE_270, 90, False),  # Pillow's ROTATE_270 is 90 degrees clockwise
    ((0, -1), (1, 0)): (_T.ROTATE_90, 270, False),
    ((0, 1), (1, 0)): (_T.TRANSPOSE, 270, True),  # mirror, then 270 clockwise
    ((0, -1), (-1, 0)): (_T.TRANSVERSE, 90, True),  # mirror, then 90 clockwise
}


@dataclass(frozen=True)
class Orientation:
    """How to turn the decoded picture into the displayed one.

    The picture is mirrored left-right first when `mirrored`, then turned `clockwise` degrees
    (0, 90, 180, 270, or any angle for unusual matrices).
    """

    transpose: Image.Transpose | None = None
    clockwise: float = 0.0
    mirrored: bool = False
    free_angle: bool = False  # not a multiple of 90 degrees: rotate with resampling

    @property
    def swaps_axes(self) -> bool:
        if self.free_angle:
            return False
        return self.transpose in (_T.ROTATE_90, _T.ROTATE_270, _T.TRANSPOSE, _T.TRANSVERSE)


UPRIGHT = Orientation()


def orientation_from_matrix(matrix: bytes | None) -> Orientation:
    """Read FFmpeg's AV_PKT_DATA_DISPLAYMATRIX (nine int32, 16.16 fixed point for a, b, c, d).

    The matrix maps a coded point (x, y) to (a*x + c*y, b*x + d*y) on the display.
    """
    if not matrix or len(matrix) < 36:
        return UPRIGHT
    values = struct.unpack("<9i", matrix[:36])
    a, b, c, d = (values[i] / 65536.0 for i in (0, 1, 3, 4))
    if not any((a, b, c, d)):
        return UPRIGHT
    key = ((_unit(a), _unit(b)), (_unit(c), _unit(d)))
    if key in _AXIS_MAPS and all(abs(v) < 1e-3 or abs(abs(v) - 1) < 1e-3 for v in (a, b, c, d)):
        transpose, clockwise, mirrored = _AXIS_MAPS[key]
        return Orientation(transpose=transpose, clockwise=clockwise, mirrored=mirrored)
    # A rotation by an arbitrary angle: the x axis goes to (a, b), clockwise on screen since y is down.
    angle = math.degrees(math.atan2(b, a)) % 360
    return Orientation(clockwise=round(angle, 2), mirrored=(a * d - b * c) < 0, free_angle=True)


def _unit(value: float) -> int:
    return 0 if abs(value) < 0.5 else (1 if value > 0 else -1)


def sar_or_square(sar: Fraction | None) -> Fraction:
    """A missing or zero sample aspect ratio means square pixels."""
    if sar is None or sar <= 0:
        return Fraction(1)
    return sar


def displayed_size(width: int, height: int, sar: Fraction, orientation: Orientation) -> tuple[int, int]:
    """The size a player shows: width stretched by the pixel aspect ratio, then rotated."""
    shown_width = max(1, round(width * sar))
    if orientation.swaps_axes:
        return height, shown_width
    if orientation.free_angle:
        radians = math.radians(orientation.clockwise)
        cos, sin = abs(math.cos(radians)), abs(math.sin(radians))
        return round(shown_width * cos + height * sin), round(shown_width * sin + height * cos)
    return shown_width, height


def to_display(image: Image.Image, sar: Fraction, orientation: Orientation) -> Image.Image:
    """Apply the pixel aspect ratio, then the display matrix, to a decoded picture."""
    shown_width = max(1, round(image.width * sar))
    if shown_width != image.width:
        image = image.resize((shown_width, image.height), Image.Resampling.LANCZOS)
    if orientation.free_angle:
        if orientation.mirrored:
            image = image.transpose(_T.FLIP_LEFT_RIGHT)
        return image.rotate(-orientation.clockwise, resample=Image.Resampling.BICUBIC, expand=True)
    if orientation.transpose is not None:
        image = image.transpose(orientation.transpose)
    return image
