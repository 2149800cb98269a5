"""What a new user trips on, offline and quick: keys the stack ignores, make image's prerequisites."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.paths import REPO_ROOT
from local_stack import keys
from local_stack.demo import clear_earlier_outputs


@pytest.fixture(scope="module")
def filters() -> tuple[keys.KeyFilter, ...]:
    return keys.notification_filters()


def test_filters_are_read_from_the_transformed_template(filters: tuple[keys.KeyFilter, ...]) -> None:
    assert filters == (keys.KeyFilter("videos/", ".mp4"), keys.KeyFilter("videos/", ".MP4"))


@pytest.mark.parametrize(
    ("key", "suggested"),
    [
        ("clips/x.mp4", "videos/clips/x.mp4"),
        ("videos/x.Mp4", "videos/x.mp4"),
        ("videos/a/holiday.mov", "videos/a/holiday.mp4"),
    ],
)
def test_a_key_the_stack_ignores_is_named_with_the_filters_and_a_key_that_works(
    filters: tuple[keys.KeyFilter, ...], key: str, suggested: str
) -> None:
    problem = keys.check(key, filters)
    assert problem is not None
    assert "'videos/'" in problem and "'.mp4' or '.MP4'" in problem and repr(suggested) in problem
    assert keys.check(suggested, filters) is None


def test_a_mov_video_defaults_to_an_mp4_key(filters: tuple[keys.KeyFilter, ...]) -> None:
    assert keys.default_key(Path("/home/me/holiday.mov"), filters) == "videos/holiday.mp4"
    assert keys.default_key(Path("/home/me/clip.MP4"), filters) == "videos/clip.MP4"


def _demo(
    *arguments: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "local_stack", "demo", *arguments, "--out", "unused-demo-output"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize("key", ["clips/x.mp4", "videos/x.Mp4"])
def test_demo_with_an_ignored_key_fails_at_once(key: str) -> None:
    result, took = _demo("--key", key)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "notification filters" in result.stdout and "make demo KEY=" in result.stdout
    assert took < 60  # before any stack is started, where it waited 10 minutes before
    assert not (REPO_ROOT / "unused-demo-output").exists()


def test_demo_with_a_mov_video_and_no_key_would_upload_it_as_mp4(tmp_path: Path) -> None:
    # A missing .mov: the key check passes (the default key is videos/<name>.mp4), the file check names it.
    result, _ = _demo("--video", str(tmp_path / "holiday.mov"))
    assert result.returncode == 2
    assert "no such video file" in result.stdout and "notification filters" not in result.stdout


def test_demo_expands_a_leading_tilde_itself(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    result, _ = _demo("--video", "~/clips/x.mp4", env=env)
    assert result.returncode == 2
    assert f"no such video file: {tmp_path}/clips/x.mp4" in result.stdout


def test_earlier_outputs_of_the_same_key_are_cleared_and_others_kept(tmp_path: Path) -> None:
    for name in ["a.mp4.json", "a.mp4.jpg", "a.mp4.320w.png", "a.mp4.notes.txt", "b.mp4.json", "ab.mp4.jpg"]:
        (tmp_path / name).write_text("x")
    removed = clear_earlier_outputs(tmp_path / "a.mp4.json")
    assert [p.name for p in removed] == ["a.mp4.320w.png", "a.mp4.jpg", "a.mp4.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4.notes.txt", "ab.mp4.jpg", "b.mp4.json"]


def _image_prereqs(path: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    clean.update(
        PATH=path,
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials",
        AWS_CONFIG_FILE="/nonexistent/config",
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "ops.image_prereqs"],
        cwd=REPO_ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def aws_only_bin(tmp_path: Path) -> Path:
    """A PATH holding the venv's aws CLI and no docker."""
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the aws CLI is not in this venv (make venv installs it)")
    (tmp_path / "aws").symlink_to(aws)
    return tmp_path


def test_make_image_names_docker_absent_and_no_credentials(aws_only_bin: Path) -> None:
    result = _image_prereqs(str(aws_only_bin))
    assert result.returncode == 1 and result.stdout == ""
    assert "Docker: no `docker` command on PATH" in result.stderr
    assert "AWS credentials: `aws sts get-caller-identity` failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_make_image_names_an_unreachable_docker_engine(aws_only_bin: Path, tmp_path: Path) -> None:
    docker = next(
        (
            Path(d) / "docker"
            for d in os.environ.get("PATH", "").split(os.pathsep)
            if (Path(d) / "docker").exists()
        ),
        None,
    )
    if docker is None:
        pytest.skip("no docker client on this machine")
    (aws_only_bin / "docker").symlink_to(docker)
    result = _image_prereqs(str(aws_only_bin), DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert result.returncode == 1
    assert "Docker engine: `docker info` failed" in result.stderr
