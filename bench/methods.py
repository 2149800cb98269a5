"""The methods compared, each run as the process it would be in production, and measured.

`original`: `python -m bench.original` (whole download with boto3, then ffmpeg output seeking).
`worker`: `python -m thumbnailer s3://BUCKET/KEY --at POS --format png --out DIR`, the worker
CLI the task runs (several videos in one process for the warm case).
The peers, on a presigned URL of the same object: `ffmpeg-url`, `ffmpeg -ss POS -i URL -frames:v 1`
(input seeking, imageio-ffmpeg's binary), and `ffmpegthumbnailer-url`, Debian's ffmpegthumbnailer
at the original size, when installed. Every method writes one PNG at the source size. Wall time
covers the whole process, interpreter start included; commands are argument lists, never shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
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


def worker_command(bucket: str, keys: str | list[str], at: str, out_dir: Path) -> list[str]:
    """The worker CLI on one video or (warm case) several, one after another in one process."""
    videos = [f"s3://{bucket}/{key}" for key in ([keys] if isinstance(keys, str) else keys)]
    return [
        sys.executable,
        "-m",
        "thumbnailer",
        *videos,
        "--at",
        at,
        "--format",
        "png",
        "--out",
        str(out_dir),
    ]


def presigned_url(endpoint_url: str, bucket: str, key: str) -> str:
    """A presigned GET URL of the object on the benchmark's server (path-style, SigV4), as a user
    would hand to ffmpeg; made in the benchmark's process, not timed."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url: str = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
    return url


def ffmpeg_url_command(url: str, position_s: float, out_dir: Path) -> list[str]:
    """ffmpeg seeking on the input (-ss before -i): it reads the index, then from the keyframe."""
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-ss",
        f"{position_s:.3f}",
        "-i",
        url,
        "-frames:v",
        "1",
        "-update",
        "1",
        str(out_dir / "frame.png"),
    ]


def ffmpegthumbnailer_exe() -> str | None:
    """Debian's ffmpegthumbnailer, when installed (`apt-get install ffmpegthumbnailer`)."""
    return shutil.which("ffmpegthumbnailer")


def ffmpegthumbnailer_command(exe: str, url: str, position_s: float, out_dir: Path) -> list[str]:
    """At the original size (-s 0), PNG; -t takes whole seconds (hh:mm:ss)."""
    whole = round(position_s)
    at = f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"
    return [exe, "-i", url, "-o", str(out_dir / "frame.png"), "-s", "0", "-t", at, "-c", "png"]


def measure(
    command: list[str],
    env: dict[str, str],
    timeout_s: float = 900,
    on_line: Callable[[str], None] | None = None,
) -> Run:
    """Run `command`, polling the RSS of it and all its descendants every 10 ms; keep the peak.

    `on_line` is called with each stdout line as it arrives (the warm case times each manifest).
    """
    started = time.perf_counter()
    # Own session: the whole tree (ffmpeg too) can be stopped if the benchmark is interrupted.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    # Drain the pipes in threads: a chatty child must not block on a full pipe while we poll.
    output: dict[str, str] = {}
    readers = [_drain(process.stdout, output, "stdout", on_line), _drain(process.stderr, output, "stderr")]
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


def _drain(
    stream: Any, output: dict[str, str], name: str, on_line: Callable[[str], None] | None = None
) -> Any:
    import threading

    def read() -> None:
        if on_line is None:
            output[name] = stream.read()
            return
        lines = []
        for line in stream:
            on_line(line)
            lines.append(line)
        output[name] = "".join(lines)

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
