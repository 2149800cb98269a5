"""Storyboard tiles and stills of rotated, mirrored and anamorphic files from the real-world corpus.

Each tile must be the frame shown at its cue's start (the worker's exact-frame search, which
test_worker_corpus holds to ffmpeg, finds the frame the tile says it shows), and its pixels must be
that frame as ffmpeg draws it (auto-rotated; stretched to the tile's size, which applies the
pixel aspect ratio). The same for every still at its time.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devkit.paths import MEDIA_DIR
from tests.unit.worker.storyboard_checks import check_contiguous, tiles
from thumbnailer.__main__ import main as cli_main
from thumbnailer.extract import frame_at
from thumbnailer.probe import open_video

pytestmark = pytest.mark.media

FILES = [
    "androidx__internal_emulator_transformer_output_270_rotated.mp4",  # 270 clockwise
    "androidx__sample_rotate_and_reflect.mp4",  # transpose: mirrored and turned
    "androidx__pixel7_videoOnly_cleaned.mp4",  # 180, full range
    "androidx__bbb_800x640_768kbps_30fps_avc_pyramid_3b.mp4",  # SAR 64:45, B-pyramid, moov at end
    "androidx__bbb_800x640_768kbps_30fps_avc_2b_firstpts_10_sec.mp4",  # SAR 1137:800, 10 s empty edit
]
MAX_MEAN_DIFFERENCE = 10.0  # 8-bit levels, on a 48 px grey copy: JPEG and scaler differences only


def _ffmpeg_frame(video: Path, seconds: float, out: Path) -> Image.Image:
    """ffmpeg's frame presented at `seconds`, auto-rotated: decoded from the start and selected by
    its time, timestamps kept (`-ss` finds nothing in the file whose empty edit delays the first
    frame by 10 s)."""
    import imageio_ffmpeg

    select = f"select=gte(t\\,{seconds - 0.0005:.6f})"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-copyts",
        "-i",
        str(video),
        "-vf",
        select,
    ]
    subprocess.run([*command, "-frames:v", "1", str(out)], check=True, timeout=120)
    return Image.open(out).convert("RGB")


def _difference(ours: Image.Image, reference: Image.Image) -> float:
    size = (48, max(1, round(48 * ours.height / ours.width)))
    a = np.asarray(ours.convert("L").resize(size, Image.Resampling.BOX), dtype=np.float32)
    b = np.asarray(reference.convert("L").resize(size, Image.Resampling.BOX), dtype=np.float32)
    return float(np.abs(a - b).mean())


@pytest.mark.parametrize("name", FILES)
def test_tiles_and_stills_of_corpus_files(media_dir: Path, name: str, tmp_path: Path) -> None:
    video_path = media_dir / name
    out = tmp_path / "out"
    flags = ["--storyboard", "--count", "3", "--format", "png", "--at", "0"]
    assert cli_main([str(video_path), "--out", str(out), *flags]) == 0
    manifest = json.loads((out / f"{name}.json").read_text())
    found = tiles(out, f"{name}.storyboard.vtt")
    check_contiguous([cue for cue, _ in found], manifest["source"]["duration"])
    document = json.loads((out / f"{name}.storyboard.json").read_text())
    stills = [entry for entry in manifest["thumbnails"] if entry["kind"] == "still"]
    with video_path.open("rb") as file, open_video(file) as video:
        shown_at_cues = [frame_at(video, cue.start).time for cue, _ in found]
        shown_at_stills = [frame_at(video, still["time"]).time for still in stills]
    assert shown_at_cues == pytest.approx([t["frame_time"] for t in document["tiles"]], abs=1e-6)
    assert shown_at_stills == pytest.approx([s["frame_time"] for s in stills], abs=1e-6)
    pictures = [(tile, t["frame_time"]) for (_, tile), t in zip(found, document["tiles"], strict=True)]
    pictures += [(Image.open(still["name"]), still["frame_time"]) for still in stills]
    for i, (picture, frame_time) in enumerate(pictures):
        reference = _ffmpeg_frame(video_path, frame_time, tmp_path / f"ref-{i}.png")
        assert abs(reference.width / reference.height - picture.width / picture.height) < 0.35 or (
            manifest["source"]["sample_aspect_ratio"] != "1:1"  # ffmpeg's frame is the coded size
        )
        difference = _difference(picture, reference)
        assert difference <= MAX_MEAN_DIFFERENCE, (i, frame_time, difference)
        if manifest["source"]["rotation"] or manifest["source"]["mirrored"]:
            turned = _difference(picture, reference.transpose(Image.Transpose.ROTATE_180))
            assert difference < turned, (i, difference, turned)


def test_the_corpus_is_where_the_tests_expect() -> None:
    if not (MEDIA_DIR / "SOURCES.md").is_file():
        pytest.skip(f"real-world corpus not found at {MEDIA_DIR} (expected beside the clone)")
    assert all((MEDIA_DIR / name).is_file() for name in FILES)
