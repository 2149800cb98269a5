"""Decoded frame -> sRGB picture: the source's matrix and range honoured, HDR tone-mapped to SDR.

swscale converts YUV to RGB given the right matrix (BT.601/709/2020) and range (limited or
full) but has no tone mapping, so HDR (PQ, HLG) goes through numpy: non-linear BT.2020 RGB
-> EOTF to light relative to SDR reference white (203 cd/m2, ITU-R BT.2408) -> BT.709
gamut -> a luminance tone curve with a knee -> sRGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
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

SDR_WHITE_NITS = 203.0
HDR_PEAK_NITS = 1000.0  # typical mastering peak; the curve reaches white there
KNEE = 0.8  # below this (relative to SDR white) light passes unchanged

Floats = npt.NDArray[np.float32]

BT2020_TO_BT709 = np.array(
    [[1.660491, -0.587641, -0.072850], [-0.124550, 1.132900, -0.008349], [-0.018151, -0.100579, 1.118730]],
    dtype=np.float32,
)


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
        rgb = _reformat(frame, "rgb24").to_ndarray()
        return Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    coded = _reformat(frame, "rgb48le").to_ndarray().astype(np.float32) / 65535.0
    linear = pq_to_relative(coded) if info.hdr == "pq" else hlg_to_relative(coded)
    sdr = tone_map(linear @ BT2020_TO_BT709.T)
    return Image.fromarray(np.round(srgb_oetf(sdr) * 255.0).astype(np.uint8), mode="RGB")


def pq_to_relative(signal: Floats) -> Floats:
    """SMPTE ST 2084 EOTF, as light relative to SDR reference white."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.power(np.clip(signal, 0.0, 1.0), 1 / m2)
    nits = 10000.0 * np.power(np.maximum(p - c1, 0.0) / (c2 - c3 * p), 1 / m1)
    return (nits / SDR_WHITE_NITS).astype(np.float32)


def hlg_to_relative(signal: Floats) -> Floats:
    """ARIB STD-B67 inverse OETF and the BT.2100 OOTF for a 1000 cd/m2 display."""
    a = 0.17883277
    b, c = 1 - 4 * a, 0.5 - a * np.log(4 * a)
    e = np.clip(signal, 0.0, 1.0)
    scene = np.where(e <= 0.5, e * e / 3.0, (np.exp((e - c) / a) + b) / 12.0)
    luma = scene @ np.array([0.2627, 0.6780, 0.0593], dtype=np.float32)
    gamma = 1.2
    nits = HDR_PEAK_NITS * np.power(np.maximum(luma, 1e-6), gamma - 1)[..., None] * scene
    relative: Floats = (nits / SDR_WHITE_NITS).astype(np.float32)
    return relative


def tone_map(linear: Floats, peak: float = HDR_PEAK_NITS / SDR_WHITE_NITS) -> Floats:
    """Compress luminance above the knee so `peak` lands on white; hue kept by scaling RGB together."""
    linear = np.maximum(linear, 0.0)
    luma = linear @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    x = np.maximum(luma - KNEE, 0.0) / (1 - KNEE)
    x_max = (peak - KNEE) / (1 - KNEE)
    compressed = KNEE + (1 - KNEE) * x * (1 + x / (x_max * x_max)) / (1 + x)
    mapped = np.where(luma > KNEE, compressed, luma)
    scale = np.where(luma > 1e-6, mapped / np.maximum(luma, 1e-6), 1.0)
    return np.clip(linear * scale[..., None], 0.0, 1.0).astype(np.float32)


def srgb_oetf(linear: Floats) -> Floats:
    return np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(np.maximum(linear, 0.0031308), 1 / 2.4) - 0.055
    ).astype(np.float32)
