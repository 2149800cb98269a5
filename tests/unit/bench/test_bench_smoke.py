"""`python -m bench` in miniature: every method (the peers too) and the warm case on one small
generated video over real HTTP; ffmpegthumbnailer skipped with a note when it is not installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from bench import methods, report
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


def test_every_method_writes_the_same_frame_and_the_counters_agree(tmp_path: Path) -> None:
    video = next(v for v in ensure_videos(quick=True, log=False) if v.seconds == 6 and v.moov_at_end)
    plan = Plan(
        videos=[video],
        servers=("range",),
        positions=("50%",),
        auto=False,
        link=Link(0.0, 0.0),
        warm_positions=("50%",),
    )
    keep = tmp_path / "outputs"
    cases = run_plan(plan, log=lambda _: None, keep_outputs=keep)
    thumbnailer = methods.ffmpegthumbnailer_exe() is not None
    expected = {"original", "worker", "ffmpeg-url", *(["ffmpegthumbnailer-url"] if thumbnailer else [])}
    by_method = {c["method"]: c for c in cases}
    assert set(by_method) == {*expected, "worker-warm"}
    # Every PNG shows frame 90 (3.0 s at 30 fps), not a neighbour, but ffmpegthumbnailer's: asked
    # for 00:00:03, it shows the frame after (91), as measured; it is not frame-exact.
    neighbours = _frames(video.path, {89, 90, 91})
    for method in expected:
        shown = _closest(next(keep.rglob(f"{method}/*.png")), neighbours)
        assert shown == (91 if method == "ffmpegthumbnailer-url" else 90), method
    for case in cases:
        assert case["ok"], (case["method"], case.get("stderr_tail"))
        assert case["output_size"] == [1920, 1080]
        assert case["peak_rss_mb"] > 10  # the poller saw the process tree
        assert case["position_s"] == 3.0
    original, worker, warm = by_method["original"], by_method["worker"], by_method["worker-warm"]
    assert original["bytes_read"] == video.size  # the whole object, once
    assert worker["bytes_read"] == worker["worker_reported_bytes"]  # the worker's accounting matches
    assert worker["min_bytes"] <= worker["bytes_read"]  # (a 3 MB file is all moov and keyframes)
    assert by_method["ffmpeg-url"]["bytes_read"] > 0  # may exceed the file (moov at the end)
    assert warm["bytes_read"] == worker["bytes_read"] and warm["warm_startup_s"] > 0

    report.write_all(report.machine_info(plan.link), cases, tmp_path / "latest.json", tmp_path)
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert {c["method"] for c in saved["cases"]} == {*expected, "worker-warm"}
    table = (tmp_path / "benchmark.md").read_text()
    assert "| 0.1 min, 3 MB | end | 50% | worker |" in table
    assert "| 0.1 min, 3 MB | end | 50% | ffmpeg-url | " in table
    assert "| 0.1 min, 3 MB | end | 50% | worker-warm |" in table
    assert ("not installed on this machine" in table) != thumbnailer
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")


def test_without_ffmpegthumbnailer_its_cases_are_skipped_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(methods, "ffmpegthumbnailer_exe", lambda: None)
    video = next(v for v in ensure_videos(quick=True, log=False) if v.seconds == 6 and not v.moov_at_end)
    plan = Plan(
        videos=[video],
        servers=("range",),
        methods=("ffmpegthumbnailer-url", "ffmpeg-url"),
        positions=("1s",),
        auto=False,
        link=Link(0.0, 0.0),
        warm_positions=(),
    )
    cases = run_plan(plan, log=lambda _: None)
    assert [c["method"] for c in cases] == ["ffmpeg-url"] and cases[0]["ok"]
    machine = report.machine_info(plan.link)
    assert machine["ffmpegthumbnailer"] is None
    assert "not installed on this machine: its cases were skipped" in report.markdown(
        machine, cases, tmp_path / "latest.json", tmp_path
    )
