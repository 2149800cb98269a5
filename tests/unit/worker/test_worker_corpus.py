"""The real-world corpus (../shared/media): a thumbnail of the displayed size, or exit 3 with a reason.

Expected sizes come from the ffprobe text beside the corpus (width, height, SAR, rotation),
not from the worker's own probe. Rotated files are compared with ffmpeg's auto-rotated frame.
"""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devkit.paths import FFPROBE_DIR, MEDIA_DIR
from thumbnailer.__main__ import main as cli_main

pytestmark = pytest.mark.media

# Documented in SOURCES.md as having no usable video: no stream, no samples, unreadable.
UNUSABLE = {
    "androidx__sample_audio_only.mp4",
    "gomp4__sample_qt.mp4",
    "mp4ff__hvc1_init.mp4",
    "mp4ff__init_truncated.mp4",
    "mp4parse__chunk_out_of_range.mp4",
    "shaka__sintel-video-segment.mp4",
    "small__Mpeg4.mp4",
}
# Without the corpus, one placeholder case whose media_dir fixture skips with the reason.
CORPUS = sorted(p.name for p in MEDIA_DIR.glob("*") if p.suffix.lower() in {".mp4", ".mov", ".m4v"}) or [
    "absent"
]


def expected_display(name: str) -> tuple[int, int, int]:
    """(width, height, rotation) of the first non-cover-art video stream, from ffprobe's text."""
    text = (FFPROBE_DIR / f"{name}.txt").read_text()
    for block in re.findall(r"\[STREAM\](.*?)\[/STREAM\]", text, re.S):
        fields = dict(re.findall(r"^([\w:]+)=(.*)$", block, re.M))
        if fields.get("codec_type") != "video" or fields.get("DISPOSITION:attached_pic") == "1":
            continue
        width, height = int(fields["width"]), int(fields["height"])
        sar_text = fields.get("sample_aspect_ratio", "N/A")
        sar = (
            Fraction(*map(int, sar_text.split(":"))) if re.match(r"^\d+:[1-9]\d*$", sar_text) else Fraction(1)
        )
        shown_width = round(width * (sar or 1))
        rotation = int(float(fields.get("rotation", "0")))
        if rotation % 180:
            return height, shown_width, rotation
        return shown_width, height, rotation
    raise AssertionError(f"ffprobe lists no video stream for {name}")


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file(media_dir: Path, name: str, tmp_path: Path) -> None:
    code = cli_main([str(media_dir / name), "--out", str(tmp_path), "--format", "png"])
    manifest = json.loads((tmp_path / f"{name}.json").read_text())
    if name in UNUSABLE:
        assert code == 3
        assert manifest["status"] == "error" and manifest["error"]["reason"]
        assert [p.name for p in tmp_path.iterdir()] == [f"{name}.json"]
        return
    assert code == 0, manifest.get("error")
    width, height, _ = expected_display(name)
    image = Image.open(tmp_path / f"{name}.png")
    assert abs(image.width - width) <= 1 and abs(image.height - height) <= 1, (image.size, (width, height))
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    assert grey.size and manifest["thumbnails"][0]["bytes"] > 0
    duration = manifest["source"]["duration"]
    assert 0 <= manifest["frame"]["time"] <= (duration or 1e9) + 0.05


ROTATED = [
    n for n in CORPUS if n not in UNUSABLE and (FFPROBE_DIR / f"{n}.txt").is_file() and expected_display(n)[2]
] or ["absent"]


def _ffmpeg_frame(video: Path, seconds: float, out: Path) -> Image.Image:
    """ffmpeg's own frame at `seconds`, auto-rotated as players do (the reference, not our code)."""
    import imageio_ffmpeg

    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-ss",
        f"{seconds:.6f}",
        "-i",
        str(video),
    ]
    subprocess.run([*command, "-frames:v", "1", str(out)], check=True, timeout=120)
    return Image.open(out)


@pytest.mark.parametrize("name", ROTATED)
def test_rotation_matches_ffmpeg(media_dir: Path, name: str, tmp_path: Path) -> None:
    assert cli_main([str(media_dir / name), "--out", str(tmp_path), "--format", "png", "--at", "0"]) == 0
    ours = Image.open(tmp_path / f"{name}.png")
    manifest = json.loads((tmp_path / f"{name}.json").read_text())
    reference = _ffmpeg_frame(media_dir / name, manifest["frame"]["time"], tmp_path / "ffmpeg.png")
    assert reference.size == ours.size

    def small(image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("L").resize((48, 48)), dtype=np.float32).ravel()

    # Correlation of the pictures: independent of tone (ffmpeg does not tone-map HDR), but a
    # wrong rotation or mirror decorrelates them.
    same = np.corrcoef(small(ours), small(reference))[0, 1]
    mirrored = np.corrcoef(small(ours.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), small(reference))[0, 1]
    assert same > 0.9 and same > mirrored + 0.05, (same, mirrored)


def test_empty_edit_delays_the_first_frame(media_dir: Path, tmp_path: Path) -> None:
    """A 10 s empty edit: the first frame is shown at 10 s; 11 s is 30 frames later (30 fps)."""
    name = "androidx__bbb_800x640_768kbps_30fps_avc_2b_firstpts_10_sec.mp4"
    assert cli_main([str(media_dir / name), "--out", str(tmp_path / "a"), "--at", "11"]) == 0
    later = json.loads((tmp_path / "a" / f"{name}.json").read_text())
    assert later["frame"]["time"] == pytest.approx(11.0, abs=1e-3) and later["warnings"] == []
    assert cli_main([str(media_dir / name), "--out", str(tmp_path / "b"), "--at", "5"]) == 0
    early = json.loads((tmp_path / "b" / f"{name}.json").read_text())
    assert early["frame"]["time"] == pytest.approx(10.0, abs=1e-3)
    assert any("before the first frame" in w for w in early["warnings"])
    assert early["source"]["duration"] == pytest.approx(14.0, abs=0.05)
