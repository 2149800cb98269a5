"""The CLI on several videos in one process: each its own outputs, manifest and exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_stack.emulator import Emulator
from thumbnailer.__main__ import main as cli_main
from thumbnailer.errors import worst_exit_code


@pytest.mark.parametrize(
    ("codes", "worst"),
    [
        ([], 0),
        ([0, 0], 0),
        ([0, 2], 2),
        ([2, 3, 0], 3),
        ([3, 1, 2], 1),
        ([0, 1], 1),
        ([0, 7, 1], 7),
        ([1, 124, 3], 124),
        ([124, 0], 124),
    ],
)
def test_the_worst_status_is_124_then_1_then_3_then_2_then_0(codes: list[int], worst: int) -> None:
    assert worst_exit_code(codes) == worst


def test_several_videos_each_get_outputs_a_manifest_and_a_json_line(
    clips: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = [str(clips["moov_end"].path), str(clips["moov_front"].path), str(clips["vfr"].path)]
    out = tmp_path / "out"
    assert cli_main([*videos, "--out", str(out), "--at", "50%", "--format", "png"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    printed = [json.loads(line) for line in lines]
    for video, manifest in zip(videos, printed, strict=True):
        name = Path(video).name
        assert manifest == json.loads((out / f"{name}.json").read_text())
        assert manifest["status"] == "ok" and manifest["input"]["path"] == video
        assert Path(manifest["thumbnails"][0]["name"]) == out / f"{name}.png"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{Path(v).name}.png" for v in videos] + [f"{Path(v).name}.json" for v in videos]
    )


def test_each_video_has_its_own_status_and_the_process_the_worst(
    clips: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"not a video at all" * 100)
    good = str(clips["moov_end"].path)
    out = tmp_path / "out"
    code = cli_main([str(tmp_path / "missing.mp4"), good, str(not_video), "--out", str(out)])
    assert code == 3  # missing (2), fine (0), unusable (3): the worst is 3
    captured = capsys.readouterr()
    assert "missing.mp4" in captured.err  # no manifest for a path that is not there
    statuses = [json.loads(line)["status"] for line in captured.out.splitlines()]
    assert statuses == ["ok", "error"]
    assert json.loads((out / "notes.mp4.json").read_text())["error"]["exit_code"] == 3
    assert (out / "moov_end.mp4.jpg").is_file()


def test_a_second_video_with_the_same_file_name_is_refused_not_overwritten(
    clips: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "elsewhere" / "moov_end.mp4"
    other.parent.mkdir()
    shutil.copy(clips["moov_front"].path, other)
    out = tmp_path / "out"
    code = cli_main([str(clips["moov_end"].path), str(other), "--out", str(out), "--at", "1"])
    assert code == 2
    captured = capsys.readouterr()
    assert "would overwrite" in captured.err and len(captured.out.splitlines()) == 1
    manifest = json.loads((out / "moov_end.mp4.json").read_text())
    assert manifest["input"]["path"] == str(clips["moov_end"].path)


# Run as the CLI's entry point does, then list which of the costly optional modules were imported.
_IMPORTS_PROBE = """
import json, sys
from thumbnailer.startup import skip_optional_imports
skip_optional_imports()
from thumbnailer.__main__ import main
code = main(sys.argv[1:])
costly = ("numpy", "boto3", "s3transfer", "botocore.session")
print(json.dumps([code, sorted(m for m in costly if m in sys.modules)]))
"""


def _imported(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE, *args], capture_output=True, text=True, env=env, check=False
    )
    code, modules = json.loads(done.stdout.splitlines()[-1])
    return code, modules


def test_a_job_imports_only_what_it_uses(
    clips: dict[str, Any], tmp_path: Path, worker_emulator: Emulator, task_s3: Any, task_bucket: str
) -> None:
    """Start-up: numpy only for `auto` (and HDR), botocore's client only for an s3:// input, boto3 never."""
    local = str(clips["moov_front"].path)
    assert _imported([local, "--out", str(tmp_path / "a"), "--at", "50%", "--format", "png"]) == (0, [])
    assert _imported([local, "--out", str(tmp_path / "b"), "--at", "auto"]) == (0, ["numpy"])
    task_s3.upload_file(local, task_bucket, "videos/c.mp4")
    env = {**os.environ, **worker_emulator.environment}
    s3_args = [f"s3://{task_bucket}/videos/c.mp4", "--out", str(tmp_path / "c"), "--at", "50%"]
    assert _imported(s3_args, env) == (0, ["botocore.session"])
