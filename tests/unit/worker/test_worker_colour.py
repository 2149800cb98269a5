"""Colour: limited/full range, BT.601/BT.709 matrices, and HDR (PQ, HLG) tone-mapped to SDR."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.unit.worker.synthetic import make_levels_clip
from thumbnailer import colour, hdr
from thumbnailer.extract import frame_at
from thumbnailer.probe import open_video


def _yuv_frame(
    y: int, u: int, v: int, *, fmt: str = "yuv420p", colorspace: int = 1, rng: int = 1
) -> av.VideoFrame:
    planes = np.zeros((96, 64), np.uint8)
    planes[:64] = y
    planes[64:80] = u  # U then V (each 32x32, stored as 16 rows of 64)
    planes[80:] = v
    frame = av.VideoFrame.from_ndarray(planes, format=fmt)
    frame.colorspace, frame.color_range = colorspace, rng
    return frame


def _reference_rgb(y: int, u: int, v: int, kr: float, kb: float, full: bool) -> np.ndarray:
    """YCbCr -> R'G'B' straight from the matrix definition (ITU-R BT.601/709)."""
    if full:
        yn, cb, cr = y / 255, (u - 128) / 255, (v - 128) / 255
    else:
        yn, cb, cr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    kg = 1 - kr - kb
    r = yn + 2 * (1 - kr) * cr
    b = yn + 2 * (1 - kb) * cb
    g = (yn - kr * r - kb * b) / kg
    return np.clip(np.array([r, g, b]) * 255, 0, 255)


@pytest.mark.parametrize(
    ("colorspace", "kr", "kb"), [(1, 0.2126, 0.0722), (5, 0.299, 0.114), (6, 0.299, 0.114)]
)
@pytest.mark.parametrize("rng", [1, 2])
def test_matrix_and_range(colorspace: int, kr: float, kb: float, rng: int) -> None:
    for y, u, v in [(16, 128, 128), (235, 128, 128), (120, 90, 200), (81, 90, 240), (145, 54, 34)]:
        got = np.asarray(colour.to_srgb_image(_yuv_frame(y, u, v, colorspace=colorspace, rng=rng)))[0, 0]
        want = _reference_rgb(y, u, v, kr, kb, full=rng == 2)
        assert np.abs(got - want).max() <= 3, (colorspace, rng, (y, u, v), got, want)


def test_yuvj_means_full_range_and_unspecified_matrix_follows_size() -> None:
    frame = _yuv_frame(16, 128, 128, fmt="yuvj420p", rng=0)
    assert np.asarray(colour.to_srgb_image(frame))[0, 0].tolist() == [16, 16, 16]
    unspecified = _yuv_frame(81, 90, 240, colorspace=2)  # 64 px high: SD, so BT.601
    want = _reference_rgb(81, 90, 240, 0.299, 0.114, full=False)
    assert np.abs(np.asarray(colour.to_srgb_image(unspecified))[0, 0] - want).max() <= 3


def _band_levels(path: Path, bands: int) -> list[float]:
    with path.open("rb") as handle, open_video(handle) as video:
        picked = frame_at(video, 0.0)
        assert colour.describe(picked.frame).hdr is not None or bands == 0
        image = np.asarray(colour.to_srgb_image(picked.frame)).astype(float)
    width = image.shape[1] // bands
    return [float(image[:, i * width + 4 : (i + 1) * width - 4].mean()) for i in range(bands)]


def test_pq_is_tone_mapped_not_washed_out(tmp_path: Path) -> None:
    # PQ code values: black, 18% grey (26 cd/m2, BT.2408), diffuse white (203 cd/m2), 1000 cd/m2.
    levels = [0.0, 0.38, 0.58, 0.75]
    black, grey, white, highlight = _band_levels(make_levels_clip(tmp_path / "pq.mp4", levels), 4)
    assert black < 8
    assert 80 <= grey <= 130  # sRGB 18% grey is about 118; shown as plain gamma it would be far off
    assert white >= 225  # diffuse white near white; read as SDR it would be a dull grey of about 148
    assert highlight >= white and highlight >= 250
    assert grey < white - 80  # contrast kept: a washed-out picture squeezes these together


def test_hlg_is_tone_mapped(tmp_path: Path) -> None:
    # HLG: 0.75 is reference white (203 cd/m2 on a 1000 cd/m2 display), 0.38 about 18% grey.
    black, grey, white = _band_levels(
        make_levels_clip(tmp_path / "hlg.mp4", [0.0, 0.38, 0.75], transfer="hlg"), 3
    )
    assert black < 8
    assert 70 <= grey <= 140
    assert white >= 220


def test_ten_bit_sdr_keeps_its_levels(tmp_path: Path) -> None:
    path = make_levels_clip(tmp_path / "sdr10.mp4", [0.0, 0.5, 1.0], transfer="bt709")
    with path.open("rb") as handle, open_video(handle) as video:
        frame = frame_at(video, 0.0).frame
        assert frame.format.name == "yuv420p10le" and colour.describe(frame).hdr is None
        image = np.asarray(colour.to_srgb_image(frame)).astype(float)
    assert image[:, 4:38].mean() < 3
    assert abs(image[:, 46:80].mean() - 127.5) < 4
    assert image[:, 90:124].mean() > 252


def test_tone_curve_is_continuous_and_reaches_white_at_peak() -> None:
    luma = np.linspace(0, hdr.HDR_PEAK_NITS / hdr.SDR_WHITE_NITS, 2000, dtype=np.float32)
    grey = np.repeat(luma[:, None], 3, axis=1)
    mapped = hdr.tone_map(grey)[:, 0]
    assert np.all(np.diff(mapped) >= -1e-6)  # monotonic
    assert mapped[-1] == pytest.approx(1.0, abs=1e-3)
    below = luma < hdr.KNEE
    assert np.allclose(mapped[below], luma[below])
