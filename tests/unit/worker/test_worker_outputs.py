"""Output naming (docs/contract.md), encoding and the manifest, and the CLI's exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from devkit.paths import REPO_ROOT
from tests.unit.worker.synthetic import Clip, read_barcode
from thumbnailer.__main__ import main as cli_main
from thumbnailer.colour import to_srgb_image
from thumbnailer.errors import InvalidOptionsError
from thumbnailer.inputs import source_metadata
from thumbnailer.naming import OutputNames
from thumbnailer.render import encode, render
from thumbnailer.s3_fetcher import SourceObject


def test_names_follow_the_contract() -> None:
    names = OutputNames.for_key("videos/a/b.mp4", "videos/", "thumbnails/")
    assert names.thumbnail("jpg") == "thumbnails/a/b.mp4.jpg"
    assert names.thumbnail("webp", 320) == "thumbnails/a/b.mp4.320w.webp"
    assert names.manifest() == "thumbnails/a/b.mp4.json"
    other = OutputNames.for_key("videos/a/b.mov", "videos/", "thumbnails/")
    assert other.thumbnail("jpg") != names.thumbnail("jpg") and other.manifest() != names.manifest()
    assert OutputNames.for_key("videos/with space+plus é.mp4", "videos/", "thumbnails/").manifest() == (
        "thumbnails/with space+plus é.mp4.json"
    )
    for bad in ("videos/", "videos/dir/"):
        with pytest.raises(InvalidOptionsError):
            OutputNames.for_key(bad, "videos/", "thumbnails/")


def test_a_key_whose_outputs_s3_would_refuse_is_invalid() -> None:
    """S3 keys are at most 1024 bytes (UTF-8); outputs add `thumbnails/` and a suffix to the key."""
    fits = "videos/" + "é" * 500 + ".mp4"  # 1011 bytes: `.json` (and `.jpg`) still fit
    names = OutputNames.for_key(fits, "videos/", "thumbnails/")
    assert len(names.manifest().encode()) == 1020
    assert len(names.thumbnail("webp", 64).encode()) == 1024
    with pytest.raises(InvalidOptionsError, match="1024 bytes"):
        names.thumbnail("webp", 320)  # 1025 bytes
    with pytest.raises(InvalidOptionsError, match="1024 bytes"):
        OutputNames.for_key("videos/" + "a" * 1013 + ".mp4", "videos/", "thumbnails/")


def _source(key: str) -> SourceObject:
    etag = '"' + "e" * 32 + '"'
    return SourceObject("b" * 63, key, "v" * 32, 1, etag, "video/mp4", {})


def test_output_metadata_stays_within_the_2_kb_s3_accepts() -> None:
    """S3 refuses user metadata over 2 KB (names and values, UTF-8); moto accepts any size."""
    assert source_metadata(_source("videos/a b+é.mp4"))["source-key"] == "videos/a%20b%2B%C3%A9.mp4"
    long_key = "videos/" + "視" * 300 + ".mp4"  # 911 bytes: a valid key, 2.7 KB once percent-encoded
    metadata = {**source_metadata(_source(long_key)), "thumbnail-time": "86399.999999"}
    assert sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items()) <= 2048
    assert metadata["source-version-id"] == "v" * 32 and metadata["source-etag"] == "e" * 32


@pytest.mark.parametrize(("fmt", "pil_format"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_formats_decode_as_themselves(fmt: Any, pil_format: str) -> None:
    picture = Image.new("RGB", (101, 57), (200, 30, 30))  # odd sizes
    (only,) = render(picture, fmt, ())
    decoded = Image.open(io.BytesIO(only.body))
    assert decoded.format == pil_format and decoded.size == (101, 57)
    sized = render(picture, fmt, (50, 101, 300))
    assert [(r.width, r.height) for r in sized] == [(50, 28), (101, 57), (101, 57)]
    assert sized[2].warnings and not sized[0].warnings


def test_png_is_lossless(clips: dict[str, Any]) -> None:
    """The default PNG (FFmpeg's encoder, rows stored) decodes to exactly the picture's pixels."""
    clip: Clip = clips["moov_end"]
    with av.open(str(clip.path)) as container:
        frame = next(frame for i, frame in enumerate(container.decode(video=0)) if i == 45)
    picture = to_srgb_image(frame)
    for shown in (picture, picture.crop((3, 5, 104, 62)), picture.convert("L")):  # odd sizes, grey
        decoded = Image.open(io.BytesIO(encode(shown, "png")))
        assert decoded.format == "PNG" and decoded.mode == "RGB"
        assert decoded.tobytes() == shown.convert("RGB").tobytes()
        assert decoded.info["aspect"] == (1, 1)  # pHYs: square pixels, as displayed
    assert read_barcode(Image.open(io.BytesIO(encode(picture, "png")))) == 45


def test_cli_writes_thumbnail_and_manifest(
    clips: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip: Clip = clips["moov_end"]
    code = cli_main([str(clip.path), "--out", str(tmp_path), "--at", "00:00:01.5", "--format", "png"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "moov_end.mp4.json").read_text())
    assert printed["status"] == "ok" and printed["frame"]["time"] == pytest.approx(1.5)
    assert read_barcode(Image.open(tmp_path / "moov_end.mp4.png")) == 45
    assert printed["source"]["display_width"] == clip.width
    assert set(printed["timings_ms"]) >= {"open", "seek", "decode", "encode", "upload"}


def test_cli_percent_of_duration(clips: dict[str, Any], tmp_path: Path) -> None:
    clip: Clip = clips["moov_end"]  # 90 frames, 3 s
    assert cli_main([str(clip.path), "--out", str(tmp_path), "--at", "50%", "--format", "png"]) == 0
    assert read_barcode(Image.open(tmp_path / "moov_end.mp4.png")) == 45
    # 100% is a valid value: the last frame, without a warning that it is past the end.
    assert cli_main([str(clip.path), "--out", str(tmp_path), "--at", "100%", "--format", "png"]) == 0
    assert read_barcode(Image.open(tmp_path / "moov_end.mp4.png")) == 89
    assert json.loads((tmp_path / "moov_end.mp4.json").read_text())["warnings"] == []


def test_cli_invalid_option_exits_2_and_writes_nothing(clips: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli_main([str(clips["moov_end"].path), "--out", str(out), "--at", "-3"]) == 2
    assert cli_main([str(clips["moov_end"].path), "--out", str(out), "--width", "0"]) == 2
    assert not out.exists()


def test_cli_unusable_input_exits_3_with_an_error_manifest(tmp_path: Path) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video\n" * 50)
    assert cli_main([str(not_video), "--out", str(tmp_path / "out")]) == 3
    manifest = json.loads((tmp_path / "out" / "notes.mp4.json").read_text())
    assert manifest["status"] == "error" and manifest["error"]["reason"] == "not_a_video"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.mp4.json"]


def test_cli_as_a_real_process(clips: dict[str, Any], tmp_path: Path) -> None:
    clip: Clip = clips["moov_front"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "thumbnailer",
            str(clip.path),
            "--out",
            str(tmp_path),
            "--at",
            "1",
            "--width",
            "96",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["thumbnails"][0]["name"].endswith("moov_front.mp4.96w.jpg")
    thumbnail = Image.open(tmp_path / "moov_front.mp4.96w.jpg")
    assert thumbnail.size == (96, 54)
    assert read_barcode(thumbnail, coded_width=clip.width) == 30
    # Logs are JSON lines on stderr, with the stage timings.
    stages = {json.loads(line).get("stage") for line in result.stderr.splitlines() if line.startswith("{")}
    assert {"open", "seek", "decode", "encode", "upload"} <= stages


def test_cli_missing_local_file_exits_3_as_a_missing_object_does(tmp_path: Path) -> None:
    assert cli_main([str(tmp_path / "absent.mp4"), "--out", str(tmp_path / "out")]) == 3
    assert not (tmp_path / "out").exists()


def test_cli_s3_input_without_credentials_says_how_to_fix_it(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    result = subprocess.run(
        [sys.executable, "-m", "thumbnailer", "s3://some-bucket/videos/a.mp4", "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["reason"] == "no_credentials" and "AWS_ENDPOINT_URL" in error["message"]
