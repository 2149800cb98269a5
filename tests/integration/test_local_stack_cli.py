"""`make local-up` / `make local-down` (python -m local_stack up|down): what they leave running."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack import __main__ as cli


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's state in a directory of this test's own, never the repository's .local-stack/."""
    monkeypatch.setattr(cli, "STATE_DIR", tmp_path)
    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "state.json")
    monkeypatch.setattr(cli, "SERVE_LOG", tmp_path / "serve.log")
    return tmp_path


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """Some other program of the user's, which happens to hold a pid a dead stack once had."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def closed_port_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_down_does_not_signal_a_process_that_merely_reuses_a_stale_pid(
    state_dir: Path, bystander: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    # A state file left by a stack that died without `down` (kill -9, reboot): its pid now names
    # another process and its endpoint answers no more.
    (state_dir / "state.json").write_text(
        json.dumps(
            {"pid": bystander.pid, "endpoint": closed_port_endpoint(), "bucket": "b", "task_logs": "x"}
        )
    )
    assert cli.down() == 0
    assert bystander.poll() is None, "make local-down killed a process that was not the local stack"
    assert "no local stack is running" in capsys.readouterr().out
    assert not (state_dir / "state.json").exists()


def test_up_that_gives_up_waiting_stops_what_it_started(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Otherwise a stack that comes up after the timeout runs on with nothing to stop it:
    `up` wrote no state for it, so `down` answers that nothing is running."""
    monkeypatch.setattr(cli, "START_TIMEOUT_S", 0.0)
    assert cli.up() == 1
    captured = capsys.readouterr()
    match = re.search(r"\(pid (\d+),", captured.out)
    assert match, captured.out
    pid = int(match.group(1))
    try:
        assert not cli._alive(pid), "the serve process was left running after `up` gave up"
        assert "did not start" in captured.err
    finally:
        if cli._alive(pid):
            os.kill(pid, signal.SIGKILL)
