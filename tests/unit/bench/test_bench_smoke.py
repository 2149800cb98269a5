"""`python -m bench` in miniature: both methods on one small generated video over real HTTP."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from bench import report
from bench.plan import Plan, run_plan
from bench.range_server import Link
from bench.videos import ensure_videos

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("thumbnailer.__main__") is None,
    reason="the worker CLI (thumbnailer) is not there",
)


def _frames(path: Path, indexes: set[int]) -> dict[int, np.ndarray]:
    with av.open(str(path)) as container:
        frames = {}
        for index, frame in enumerate(container.decode(video=0)):
            if index in indexes:
                frames[index] = np.asarray(frame.to_image(), dtype=np.int16)
            if index >= max(indexes):
                return frames
    raise AssertionError("video too short")


def _closest(image: Path, frames: dict[int, np.ndarray]) -> int:
    with Image.open(image) as png:
        pixels = np.asarray(png.convert("RGB"), dtype=np.int16)
    return min(frames, key=lambda index: float(np.abs(frames[index] - pixels).mean()))


def test_both_methods_write_the_same_frame_and_the_counters_agree(tmp_path: Path) -> None:
    video = next(v for v in ensure_videos(quick=True, log=False) if v.seconds == 6 and v.moov_at_end)
    plan = Plan(videos=[video], servers=("range",), positions=("50%",), auto=False, link=Link(0.0, 0.0))
    keep = tmp_path / "outputs"
    cases = run_plan(plan, log=lambda _: None, keep_outputs=keep)
    # Both PNGs show frame 90 (3.0 s at 30 fps), not a neighbour.
    neighbours = _frames(video.path, {89, 90, 91})
    for method in ("original", "worker"):
        assert _closest(next(keep.rglob(f"{method}/*.png")), neighbours) == 90
    by_method = {c["method"]: c for c in cases}
    assert set(by_method) == {"original", "worker"}
    original, worker = by_method["original"], by_method["worker"]
    for case in cases:
        assert case["ok"], case.get("stderr_tail")
        assert case["output_size"] == [1920, 1080]
        assert case["peak_rss_mb"] > 10  # the poller saw the process tree
        assert case["position_s"] == 3.0
    assert original["bytes_read"] == video.size  # the whole object, once
    assert worker["bytes_read"] == worker["worker_reported_bytes"]  # the worker's accounting matches
    assert worker["min_bytes"] <= worker["bytes_read"]  # (a 3 MB file is all moov and keyframes)

    report.write_all(report.machine_info(plan.link), cases, tmp_path / "latest.json", tmp_path)
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert {c["method"] for c in saved["cases"]} == {"original", "worker"}
    table = (tmp_path / "benchmark.md").read_text()
    assert "| 0.1 min, 3 MB | end | 50% | worker |" in table
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")
