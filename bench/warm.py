"""The warm case: several videos in one worker process, as a resident worker would take them.

`python -m thumbnailer s3://bench/A s3://bench/B ... --at 50% --format png --out DIR`: the first
video (the shortest, repeated later in the list) pays the start-up (interpreter, imports, the S3
client) and is reported only as that; each following video is timed from the previous manifest
line on stdout to its own; its bytes and requests are the worker's own count (manifest `io`) plus the HEAD
before writing.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import methods
from bench.minimum import physical_minimum
from bench.range_server import RunningServer
from bench.videos import HEIGHT, WIDTH, Video

METHOD = "worker-warm"


def run_warm(
    videos: list[Video],
    spec: str,
    running: RunningServer,
    env: dict[str, str],
    log: Callable[[str], None],
    *,
    bucket: str,
) -> list[dict[str, Any]]:
    """One process over [shortest video, every video]; a case per video after the first."""
    ordered = [min(videos, key=lambda v: v.size), *videos]
    marks: list[tuple[float, int, int, str]] = []  # (time, requests, bytes, line) at each manifest line
    lock = threading.Lock()

    def on_line(line: str) -> None:
        if line.startswith("{"):
            requests, sent = running.counters.snapshot()
            with lock:
                marks.append((time.perf_counter(), requests, sent, line))

    with tempfile.TemporaryDirectory(prefix="bench-warm-") as scratch:
        out_dir = Path(scratch)
        command = methods.worker_command(bucket, [v.key for v in ordered], spec, out_dir)
        running.counters.reset()
        started = time.perf_counter()
        run = methods.measure(command, env, on_line=on_line)
        cases = []
        previous = (started, 0, 0)
        for index, (at, requests, sent, line) in enumerate(marks):
            if index > 0:
                case = _case(ordered[index], spec, line, out_dir=out_dir, seconds=at - previous[0], run=run)
                # The worker's own count (it matches the server's in every cold case) plus the HEAD
                # before writing: the server's counters at each line would also catch the first
                # GET of the next video when the line is read late.
                io = json.loads(line).get("io", {})
                case.update(requests=io.get("requests", 0) + 1, bytes_read=io.get("bytes_read", 0))
                case.update(server_counted_between_lines=[requests - previous[1], sent - previous[2]])
                case.update(warm_startup_s=round(marks[0][0] - started, 3), warm_videos=len(ordered))
                cases.append(case)
                log(_describe(case))
            previous = (at, requests, sent)
    if len(marks) != len(ordered) or run.returncode != 0:
        log(f"  warm case at {spec}: exit {run.returncode}, {len(marks)} of {len(ordered)} manifests")
        for case in cases:
            case["ok"] = False
    return cases


def _case(
    video: Video, spec: str, line: str, *, out_dir: Path, seconds: float, run: methods.Run
) -> dict[str, Any]:
    manifest = json.loads(line)
    position = manifest.get("frame", {}).get("time")
    names = [t["name"] for t in manifest.get("thumbnails", [])]
    size = methods.png_size(Path(names[0])) if names else None
    if size is None and names:
        size = methods.png_size(out_dir / Path(names[0]).name)
    case: dict[str, Any] = {
        "server": "range",
        "repeat": 0,
        "method": METHOD,
        "video": video.key,
        "video_seconds": video.seconds,
        "video_bytes": video.size,
        "moov_at_end": video.moov_at_end,
        "at": spec,
        "position_s": position,
        "wall_s": round(seconds, 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),  # the whole process's, over every video
        "min_bytes": None,
        "ok": manifest.get("status") != "error" and size == (WIDTH, HEIGHT),
        "exit_code": run.returncode,
        "output_size": list(size) if size else None,
        "worker_reported_bytes": manifest.get("io", {}).get("bytes_read"),
        "worker_reported_requests": manifest.get("io", {}).get("requests"),
        "worker_timings_ms": manifest.get("timings_ms"),
    }
    if isinstance(position, int | float):
        minimum = physical_minimum(video.path, float(position))
        case.update(min_bytes=minimum.total, moov_bytes=minimum.moov_bytes, gop_bytes=minimum.gop_bytes)
    return case


def _describe(case: dict[str, Any]) -> str:
    return (
        f"  range {METHOD:21} {case['video'].split('/')[-1]:34} at {case['at']:>4}: "
        f"{case['wall_s']:7.2f} s {case['bytes_read'] / 1e6:9.2f} MB {case['requests']:4} req "
        f"(start-up {case['warm_startup_s']:.2f} s, once)"
    )
