"""HDR (PQ, HLG) to SDR with numpy: non-linear BT.2020 RGB -> EOTF to light relative to SDR
reference white (203 cd/m2, ITU-R BT.2408) -> BT.709 gamut -> a luminance tone curve with a
knee -> sRGB. Imported only for HDR sources: numpy costs the other runs' start-up nothing.
"""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

SDR_WHITE_NITS = 203.0
HDR_PEAK_NITS = 1000.0  # typical mastering peak; the curve reaches white there
KNEE = 0.8  # below this (relative to SDR white) light passes unchanged
STRIP_ROWS = 256

Floats = npt.NDArray[np.float32]

BT2020_TO_BT709 = np.array(
    [[1.660491, -0.587641, -0.072850], [-0.124550, 1.132900, -0.008349], [-0.018151, -0.100579, 1.118730]],
    dtype=np.float32,
)


def to_sdr_image(rgb48: av.VideoFrame, transfer: str) -> Image.Image:
    """A 16-bit non-linear BT.2020 RGB frame, `transfer` "pq" or "hlg", as an 8-bit sRGB picture."""
    coded = rgb48.to_ndarray()
    picture = np.empty(coded.shape, np.uint8)
    # In strips of rows: every step is per pixel, and an 8K picture's float copies would take
    # gigabytes at once (400 MB each).
    for top in range(0, coded.shape[0], STRIP_ROWS):
        strip = coded[top : top + STRIP_ROWS].astype(np.float32) / 65535.0
        linear = pq_to_relative(strip) if transfer == "pq" else hlg_to_relative(strip)
        sdr = tone_map(linear @ BT2020_TO_BT709.T)
        picture[top : top + STRIP_ROWS] = np.round(srgb_oetf(sdr) * 255.0).astype(np.uint8)
    return Image.fromarray(picture, mode="RGB")


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
