"""Limits checked in process (monkeypatched small), lying sync tables (issue 9 item 14), percentages
of the video stream when audio outlasts it (item 15), and an empty S3 object (item 13)."""

from __future__ import annotations

import json
import uuid
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from devkit.environment import overlaid_environment as environment
from local_stack.emulator import Emulator
from tests.fuzzing.mutations import mark_sync_samples
from tests.unit.worker import synthetic
from thumbnailer import aws, limits
from thumbnailer.__main__ import main as cli_main

FPS = 30


def _run(video: Path, out: Path, *args: str) -> tuple[int, dict]:
    code = cli_main([str(video), "--out", str(out), "--format", "png", *args])
    return code, json.loads((out / f"{Path(video).name}.json").read_text())


def _encode(path: Path, codec: str, frames: int, audio_seconds: float = 0.0) -> Path:
    """Barcode frames (index i in frame i), one keyframe every 30 frames, optional longer AAC tone."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream(codec, rate=FPS)
        video.width, video.height, video.pix_fmt = 192, 108, "yuv420p"
        video.codec_context.gop_size = 30
        video.options = {"bf": "0", "g": "30", "keyint_min": "30", "sc_threshold": "0"}
        sound = container.add_stream("aac", rate=48000) if audio_seconds else None
        for index in range(frames):
            picture = synthetic.barcode_image(index, 192, 108)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            samples = int(audio_seconds * 48000)
            tone = (0.1 * np.sin(np.arange(samples) * 0.05)).astype(np.float32).reshape(1, -1)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[:, start : start + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    return path


@pytest.mark.parametrize("seconds", ["0.9", "1.8", "2.9"])
def test_a_sync_sample_that_is_not_a_keyframe_is_not_decoded_from(tmp_path: Path, seconds: str) -> None:
    """MPEG-4 Part 2 decodes from a P-frame into grey smears: stss marks frames 20, 50, 80 (0-based)."""
    source = _encode(tmp_path / "clean.mp4", "mpeg4", frames=90)
    lying = tmp_path / "lying.mp4"
    lying.write_bytes(mark_sync_samples(source.read_bytes(), [21, 51, 81]))
    code, manifest = _run(lying, tmp_path / "out", "--at", seconds)
    assert code == 0
    expected = round(float(seconds) * FPS)
    assert synthetic.read_barcode(Image.open(tmp_path / "out" / "lying.mp4.png")) == expected
    assert any("not a keyframe" in w and "frames decoded" in w for w in manifest["warnings"]), manifest[
        "warnings"
    ]
    # The untouched file gives the same frame without a warning.
    code, clean = _run(source, tmp_path / "clean", "--at", seconds)
    assert code == 0 and clean["warnings"] == []
    assert synthetic.read_barcode(Image.open(tmp_path / "clean" / "clean.mp4.png")) == expected


def test_percentages_are_of_the_video_when_the_audio_outlasts_it(tmp_path: Path) -> None:
    video = _encode(tmp_path / "long-audio.mp4", "libx264", frames=30, audio_seconds=3.0)  # 1 s of video
    code, manifest = _run(video, tmp_path / "end", "--at", "100%")
    assert code == 0 and manifest["warnings"] == []
    assert synthetic.read_barcode(Image.open(tmp_path / "end" / "long-audio.mp4.png")) == 29
    assert manifest["source"]["duration"] == pytest.approx(1.0, abs=0.01)
    assert manifest["source"]["container_duration"] == pytest.approx(3.0, abs=0.05)
    code, manifest = _run(video, tmp_path / "half", "--at", "50%")
    assert code == 0 and synthetic.read_barcode(Image.open(tmp_path / "half" / "long-audio.mp4.png")) == 15


def test_frames_decoded_for_one_seek_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = synthetic.make_clip(tmp_path / "clip.mp4", frames=60, gop=60)
    monkeypatch.setattr(limits, "MAX_DECODED_FRAMES_PER_SEEK", 20)
    code, manifest = _run(clip.path, tmp_path / "out", "--at", "1.5")
    assert code == 3 and manifest["error"]["reason"] == "limits_exceeded"
    assert "20 frames" in manifest["error"]["message"]
    assert _run(clip.path, tmp_path / "early", "--at", "0.3")[0] == 0  # 10 frames in: within the limit


def test_a_moov_box_over_the_limit_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = synthetic.make_clip(tmp_path / "clip.mp4", frames=10)
    monkeypatch.setattr(limits, "MAX_MOOV_BYTES", 200)
    code, manifest = _run(clip.path, tmp_path / "out", "--at", "0")
    assert code == 3 and manifest["error"]["reason"] == "limits_exceeded"
    assert "moov box" in manifest["error"]["message"] and "more than 200" in manifest["error"]["message"]


def test_limits_admit_8k_and_anamorphic_8k() -> None:
    limits.check_decoded_size(7680, 4320)
    limits.check_decoded_size(4320, 7680)
    limits.check_decoded_size(8192, 4320)
    limits.check_display_size(10240, 4320)  # 7680 wide with 4:3 pixels
    limits.check_pixel_aspect(Fraction(16))
    with pytest.raises(limits.LimitExceededError, match="8193x8: more than 8192 pixels per side"):
        limits.check_decoded_size(8193, 8)
    with pytest.raises(limits.LimitExceededError, match="more than 35651584 pixels"):
        limits.check_decoded_size(8192, 8192)


def test_an_empty_s3_object_is_exit_3_empty_object(worker_emulator: Emulator, tmp_path: Path) -> None:
    bucket = f"empty-{uuid.uuid4().hex[:12]}"
    with environment(worker_emulator.environment):
        aws.s3_client.cache_clear()
        s3 = worker_emulator.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="videos/empty.mp4", Body=b"")
        try:
            code = cli_main([f"s3://{bucket}/videos/empty.mp4", "--out", str(tmp_path)])
        finally:
            aws.s3_client.cache_clear()
    manifest = json.loads((tmp_path / "empty.mp4.json").read_text())
    assert code == 3 and manifest["error"]["reason"] == "empty_object"
    assert "empty object" in manifest["error"]["message"]
