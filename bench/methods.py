"""The two methods compared, each run as the process it would be in production, and measured.

`original`: `python -m bench.original` (whole download with boto3, then ffmpeg output seeking).
`worker`: `python -m thumbnailer s3://BUCKET/KEY --at POS --format png --out DIR`, the worker
CLI the task runs. Both get an environment pointing boto3 at the benchmark's server and both
write one PNG at the source size. Wall time covers the whole process, interpreter start included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from local_stack.emulator import FAKE_CREDENTIALS

POLL_INTERVAL_S = 0.01


@dataclass(frozen=True)
class Run:
    """One measured process: exit code, wall time, peak RSS of its tree, and what it printed."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    def reported(self) -> dict[str, Any]:
        """The JSON object the process printed on stdout (the worker's manifest), or {}."""
        with contextlib.suppress(json.JSONDecodeError):
            whole = json.loads(self.stdout)
            if isinstance(whole, dict):
                return whole
        for raw in reversed(self.stdout.strip().splitlines()):
            line = raw.strip()
            if line.startswith("{"):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    return value
        return {}


def environment(endpoint_url: str) -> dict[str, str]:
    """The process environment with boto3 pointed at the server (and no local AWS config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    return env


def original_command(bucket: str, key: str, position_s: float, out_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.original",
        bucket,
        key,
        f"{position_s:.3f}",
        str(out_dir / "frame.png"),
    ]


def worker_command(bucket: str, key: str, at: str, out_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "thumbnailer",
        f"s3://{bucket}/{key}",
        "--at",
        at,
        "--format",
        "png",
        "--out",
        str(out_dir),
    ]


def measure(command: list[str], env: dict[str, str], timeout_s: float = 900) -> Run:
    """Run `command`, polling the RSS of it and all its descendants every 10 ms; keep the peak."""
    started = time.perf_counter()
    # Own session: the whole tree (ffmpeg too) can be stopped if the benchmark is interrupted.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    # Drain the pipes in threads: a chatty child must not block on a full pipe while we poll.
    output: dict[str, str] = {}
    readers = [_drain(process.stdout, output, "stdout"), _drain(process.stderr, output, "stderr")]
    peak = 0
    root = psutil.Process(process.pid)
    try:
        while process.poll() is None and time.perf_counter() - started < timeout_s:
            peak = max(peak, _tree_rss(root))
            time.sleep(POLL_INTERVAL_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    returncode = process.wait()
    wall = time.perf_counter() - started
    for reader in readers:
        reader.join()
    return Run(returncode, wall, peak / 2**20, output.get("stdout", ""), output.get("stderr", ""))


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        with contextlib.suppress(psutil.Error):  # exited between listing and reading
            total += process.memory_info().rss
    return total


def _drain(stream: Any, output: dict[str, str], name: str) -> Any:
    import threading

    def read() -> None:
        output[name] = stream.read()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height of a PNG, or None when it is missing or not a PNG."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.size if image.format == "PNG" else None
    except (OSError, ValueError):
        return None


def mean_abs_difference(first: Path, second: Path) -> float | None:
    """Mean absolute difference of two same-size images (0-255), or None when not comparable."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(first) as a, Image.open(second) as b:
            if a.size != b.size:
                return None
            left = np.asarray(a.convert("RGB"), dtype=np.int16)
            right = np.asarray(b.convert("RGB"), dtype=np.int16)
    except OSError:
        return None
    return float(np.abs(left - right).mean())
