"""The local stack from other processes: `make invoke`, what `make local-up` prints, Ctrl-C in the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.paths import REPO_ROOT
from local_stack import __main__ as cli
from local_stack.emulator import Emulator

EVENTS = REPO_ROOT / "src" / "events"


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`python -m local_stack serve`, as `make local-up` starts it, with a state file of its own."""
    state = tmp_path_factory.mktemp("stack") / "state.json"
    with (state.parent / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_stack", "serve", "--state", str(state)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not state.exists():
            assert process.poll() is None, (state.parent / "serve.log").read_text()
            assert time.monotonic() < deadline, "the local stack did not start in 120 s"
            time.sleep(0.3)
        yield state
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _invoke(event: Path, state_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_stack", "invoke", str(event), "--state", str(state_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _state(state_file: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(state_file.read_text())
    return state


def test_invoke_says_why_the_launcher_skipped_a_record(state_file: Path) -> None:
    result = _invoke(EVENTS / "put-outside-prefix.json", state_file)
    assert result.returncode == 0, result.stdout + result.stderr
    bucket = _state(state_file)["bucket"]
    assert f"rewrote bucket 'thumbnail-creator-123456789012-us-east-1' -> '{bucket}'" in result.stdout
    assert "Record skipped" in result.stdout and "outside the prefix 'videos/'" in result.stdout
    assert "TasksStarted 0" in result.stdout


def test_invoke_for_an_object_the_bucket_lacks_shows_the_workers_error_manifest(state_file: Path) -> None:
    result = _invoke(EVENTS / "put.json", state_file)
    assert result.returncode == 1, result.stdout + result.stderr
    # The stack's default runtime (auto): the worker function takes the job.
    assert "Job sent to the worker function" in result.stdout
    assert "source_not_found (exit 3)" in result.stdout and "status error" in result.stdout


def test_invoke_for_an_uploaded_video_waits_for_its_thumbnail(
    state_file: Path, tiny_video: Path, tmp_path: Path
) -> None:
    state = _state(state_file)
    s3 = Emulator(endpoint_url=state["endpoint"]).client("s3")
    # `.Mp4`: S3's case-sensitive filters send no event for the upload itself, the launcher (which
    # compares the suffix in any case) takes the one sent here: exactly one job, started by invoke.
    key = "videos/invoked.Mp4"
    s3.put_object(Bucket=state["bucket"], Key=key, Body=tiny_video.read_bytes())
    event = json.loads((EVENTS / "put.json").read_text())
    obj = event["Records"][0]["s3"]["object"]
    obj["key"], obj["size"] = key, tiny_video.stat().st_size
    del obj["versionId"]  # the sample's names a version the local bucket does not hold
    (tmp_path / "event.json").write_text(json.dumps(event))

    result = _invoke(tmp_path / "event.json", state_file)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "LambdaJobsStarted 1" in result.stdout and "TasksStarted 0" in result.stdout
    assert "status ok" in result.stdout and "thumbnails/invoked.Mp4.jpg" in result.stdout
    # The sample's eTag is not the object's: the thumbnail is of the current object, and says so.
    assert "warning: the object changed since its event" in result.stdout


def test_local_up_names_every_log_and_the_metadata_forms_the_aws_cli_takes(state_file: Path) -> None:
    text = cli.instructions(_state(state_file))
    run_dir = state_file.parent / "run"
    assert f"launcher (skipped and rejected events, tasks started): {run_dir / 'launcher.log'}" in text
    assert str(run_dir / "task-logs") in text and str(cli.SERVE_LOG) in text
    assert """--metadata '{"thumbnail-widths":"160,320"}'""" in text
    assert """--metadata 'thumbnail-widths="160,320"'""" in text
    assert (run_dir / "launcher.log").is_file()
    assert f"recovery (stopped tasks, retries, waiting jobs started): {run_dir / 'recovery.log'}" in text
    # The pending-jobs queue, as the printed command reads it: the aws CLI against the stack.
    state = _state(state_file)
    (line,) = [line for line in text.splitlines() if "sqs get-queue-attributes" in line]
    words = line.strip().removesuffix("\\").split()
    command = [*words, "--attribute-names", "ApproximateNumberOfMessages", "--region", "us-east-1"]
    assert state["outputs"]["PendingJobsQueueUrl"] in command
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    aws = str(Path(sys.executable).parent / "aws")
    answer = subprocess.run([aws, *command[1:]], capture_output=True, text=True, env=environment, check=False)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["Attributes"] == {"ApproximateNumberOfMessages": "0"}


def test_ctrl_c_in_the_demo_stops_it_with_one_line(tiny_video: Path, tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "demo", "--video", str(tiny_video), "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    first = demo.stdout.readline()
    assert "starting the embedded AWS emulator" in first
    time.sleep(1.0)
    demo.send_signal(signal.SIGINT)  # while the stack is being deployed
    out, err = demo.communicate(timeout=120)
    assert demo.returncode == 130, first + out + err
    assert "Traceback" not in out + err
    assert out.strip().splitlines()[-1].startswith("[demo] interrupted")
