"""The task's lifetime: SIGTERM ends it at once with 143, a hang ends at the deadline with 124.

The task runs as ECS runs it, `python -m thumbnailer.task` in its own process, against an S3
endpoint that accepts connections and never answers: a stalled read, the hang a deadline is for.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from thumbnailer.errors import EXIT_DEADLINE, EXIT_TERMINATED
from thumbnailer.task_lifetime import deadline_seconds

JOB = {
    "bucket": "videos-bucket",
    "key": "videos/a.mp4",
    "version_id": "v1",
    "etag": "e",
    "size": 1000,
    "event_time": "2026-01-01T00:00:00.000Z",
    "request_id": "REQ-lifetime",
}


@pytest.fixture
def stalled_endpoint() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def start_task(endpoint: str, **variables: str) -> subprocess.Popen[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "THUMBNAIL_JOB": json.dumps(JOB),
        **variables,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "thumbnailer.task"],
        env=env,
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def log_records(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def wait_for_job(process: subprocess.Popen[str]) -> None:
    """Until the task has read its job (then it is stuck on the stalled HEAD)."""
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if '"job received"' in line:
            return
    raise AssertionError("the task never logged its job")


def test_sigterm_stops_the_task_at_once_with_143(stalled_endpoint: str) -> None:
    process = start_task(stalled_endpoint)
    wait_for_job(process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == EXIT_TERMINATED
    assert time.monotonic() - sent < 5  # ECS would SIGKILL after stopTimeout (30 s here)
    (stopped,) = [r for r in log_records(stderr) if r.get("message") == "job stopped"]
    assert stopped["reason"] == "terminated" and stopped["correlation_id"] == "REQ-lifetime"


def test_a_hung_task_ends_at_its_deadline_with_124(stalled_endpoint: str) -> None:
    started = time.monotonic()
    process = start_task(stalled_endpoint, THUMBNAIL_DEADLINE_SECONDS="2")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == EXIT_DEADLINE
    assert 2 <= time.monotonic() - started < 15  # the S3 read timeout alone is 20 s
    (stopped,) = [r for r in log_records(stderr) if r.get("message") == "job stopped"]
    assert stopped["reason"] == "deadline_exceeded"


@pytest.mark.parametrize(("text", "seconds"), [("", 900.0), ("60", 60.0), ("0.5", 0.5)])
def test_the_deadline_setting(text: str, seconds: float) -> None:
    assert deadline_seconds({"THUMBNAIL_DEADLINE_SECONDS": text}) == seconds


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan", "1e99"])
def test_a_bad_deadline_is_refused_naming_it(text: str) -> None:
    from thumbnailer.errors import InvalidOptionsError

    with pytest.raises(InvalidOptionsError, match="THUMBNAIL_DEADLINE_SECONDS"):
        deadline_seconds({"THUMBNAIL_DEADLINE_SECONDS": text})
