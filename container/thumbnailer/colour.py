"""Decoded frame -> sRGB picture: the source's matrix and range honoured, HDR tone-mapped to SDR.

swscale converts YUV to RGB given the right matrix (BT.601/709/2020) and range (limited or
full) but has no tone mapping, so HDR (PQ, HLG) goes through `hdr` (numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import av
from PIL import Image

# FFmpeg enum values (libavutil/pixfmt.h).
TRC_SMPTE2084 = 16  # PQ
TRC_ARIB_STD_B67 = 18  # HLG
RANGE_MPEG, RANGE_JPEG = 1, 2
_SWS_COLORSPACE = {
    1: "itu709",
    4: "fcc",
    5: "itu601",
    6: "smpte170m",
    7: "smpte240m",
    9: "bt2020",
    10: "bt2020",
}
_MATRIX_NAMES = {
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    9: "bt2020nc",
    10: "bt2020c",
}


@dataclass(frozen=True)
class ColourInfo:
    """What the manifest says about the source's colour, and how it was converted."""

    matrix: str
    range: str
    transfer: str
    hdr: str | None  # "pq", "hlg" or None


def describe(frame: av.VideoFrame) -> ColourInfo:
    trc = int(frame.color_trc or 0)
    hdr = "pq" if trc == TRC_SMPTE2084 else "hlg" if trc == TRC_ARIB_STD_B67 else None
    return ColourInfo(
        matrix=_MATRIX_NAMES.get(int(frame.colorspace or 2), "unspecified"),
        range="full" if _is_full_range(frame) else "limited",
        transfer={1: "bt709", 6: "smpte170m", 13: "srgb", 14: "bt2020-10", 16: "pq", 18: "hlg"}.get(
            trc, "unspecified" if trc == 2 else str(trc)
        ),
        hdr=hdr,
    )


def _is_full_range(frame: av.VideoFrame) -> bool:
    if int(frame.color_range or 0) == RANGE_JPEG:
        return True
    if int(frame.color_range or 0) == RANGE_MPEG:
        return False
    # Unspecified: the deprecated yuvj formats mean full range; RGB is always full.
    name = frame.format.name
    return name.startswith("yuvj") or not _is_yuv(frame)


def _is_yuv(frame: av.VideoFrame) -> bool:
    name = frame.format.name
    return name.startswith(("yuv", "nv", "p0", "p2", "y2", "uyvy", "yuyv")) or name.startswith("gray")


def _sws_colorspace(frame: av.VideoFrame) -> str:
    known = _SWS_COLORSPACE.get(int(frame.colorspace or 2))
    if known:
        return known
    # Unspecified matrix: what players assume, BT.709 for HD and above, BT.601 below.
    return "itu709" if frame.height >= 720 else "itu601"


def _reformat(frame: av.VideoFrame, fmt: str) -> av.VideoFrame:
    if not _is_yuv(frame) or frame.format.name.startswith("gray"):
        return frame.reformat(format=fmt)
    return frame.reformat(
        format=fmt,
        src_colorspace=_sws_colorspace(frame),
        src_color_range="JPEG" if _is_full_range(frame) else "MPEG",
        dst_color_range="JPEG",
    )


def to_srgb_image(frame: av.VideoFrame) -> Image.Image:
    """The frame as an 8-bit sRGB picture (not yet rotated or stretched)."""
    info = describe(frame)
    if info.hdr is None:
        picture: Image.Image = _reformat(frame, "rgb24").to_image()  # type: ignore[no-untyped-call]
        return picture
    from thumbnailer import hdr  # numpy, loaded only for HDR sources

    return hdr.to_sdr_image(_reformat(frame, "rgb48le"), info.hdr)
