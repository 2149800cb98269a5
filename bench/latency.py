"""`make bench-latency`: upload to manifest, for the worker function and for a Fargate task.

Nothing here reaches AWS, so the end-to-end time is modelled: the worker's own time is measured
here, in the process the function runs in (local_stack/lambda_bootstrap.py, the local Lambda
runner's execution environment), cold (a new process: the init phase's imports, then the first
job) and warm (a resident process handling its 2nd and later jobs), against the emulator's S3
behind a link of 30 ms to first byte and 100 MB/s (bench/range_server.py's timing reference).
Platform stages come from published figures, each cited in STAGES; where nothing is published,
the row says it is an assumption. Writes docs/benchmark.md's section "Lambda or Fargate" between
its markers and bench/results/latency.json.

    python -m bench.latency [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.range_server import Link, counting_proxy
from bench.sections import replace_block
from devkit.paths import REPO_ROOT
from local_stack.emulator import running_emulator
from local_stack.events import FunctionConfiguration
from local_stack.lambda_runner import ExecutionEnvironment
from local_stack.video import make_video

RESULTS = REPO_ROOT / "bench" / "results" / "latency.json"
REPORT = REPO_ROOT / "docs" / "benchmark.md"
BEGIN, END = "<!-- latency:begin -->", "<!-- latency:end -->"
CAVEAT = (
    "Caveat: this machine has 2 cores; the function at its default 1769 MB has one vCPU (Lambda "
    'developer guide, "Configure Lambda function memory"), so `auto`\'s parallel keyframe decoding may '
    "take longer there; moto reads whole objects for ranged GETs (docs/emulator-gaps.md)."
)
BUCKET = "latency-bench"
CACHE = REPO_ROOT / "bench" / "cache"
VIDEOS = {"1080p, 60 s": (1920, 1080, 60.0), "720p, 30 s": (1280, 720, 30.0)}
# (stage, runtime it applies to, p50 s, p95 s, source). Figures only from the sources named.
STAGES: tuple[tuple[str, str, float, float, str], ...] = (
    (
        "S3 event to the launcher",
        "both",
        1.0,
        5.0,
        'AWS S3 user guide, "Amazon S3 Event Notifications": "typically ... in seconds but can '
        'sometimes take a minute or longer" (1 s / 5 s is this page\'s assumption within "seconds")',
    ),
    (
        "launcher: Invoke (Event) or RunTask, warm",
        "both",
        0.1,
        0.3,
        "assumption: one API call from a warm launcher (nothing published)",
    ),
    (
        "Lambda async queue to the function",
        "lambda",
        0.1,
        0.5,
        'assumption: Lambda queues the event and "a separate process reads events from the queue" '
        '(Lambda developer guide, "Asynchronous invocation"); no delay is published',
    ),
    (
        "Lambda cold start, platform part (p95 only: cold starts are rare)",
        "lambda",
        0.0,
        0.7,
        '"container provisioning 50 to 200 ms, code download + extract 50 to 500 ms" (codesnatch.io, '
        '"AWS Lambda Cold Starts: What Actually Helps", 2025); cold starts "typically occur in under 1% '
        'of invocations" (A. Tanasa, "Size is (almost) all that matters...", 2023, citing AWS)',
    ),
    (
        "Fargate task start: ENI, image pull, container start",
        "fargate",
        57.0,
        62.0,
        "53-62 s, 57 s on average, creation to start of a 413 MB image, 10 runs (elasticscale.com, "
        '"Reduce AWS Fargate pull times with SOCI", 2024); the worker image is of that order',
    ),
)


@dataclass(frozen=True)
class Sample:
    video: str
    cold: bool
    init_s: float
    job_s: float
    peak_rss_mb: float

    @property
    def worker_s(self) -> float:
        return self.init_s + self.job_s


def _videos(quick: bool) -> dict[str, Path]:
    made = {}
    for name, (width, height, full_seconds) in VIDEOS.items():
        seconds = 10.0 if quick else full_seconds
        path = CACHE / f"latency-{width}x{height}-{seconds:.0f}s.mp4"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            make_video(path, seconds=seconds, width=width, height=height)
        made[name] = path
    return made


@contextmanager
def _peak_rss(pid: int) -> Iterator[list[float]]:
    peak = [0.0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], psutil.Process(pid).memory_info().rss / 1e6)
            except psutil.Error:
                return
            stop.wait(0.01)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def _function(endpoint: str, env: Mapping[str, str]) -> tuple[FunctionConfiguration, dict[str, str]]:
    function = FunctionConfiguration(
        name="latency-worker",
        arn="arn:aws:lambda:us-east-1:123456789012:function:latency-worker",
        memory_mb=10240,  # measured, not limited
        timeout_s=120,
        environment={},
        handler="thumbnailer.lambda_handler.handler",
    )
    process_env = {
        **env,
        "AWS_ENDPOINT_URL": endpoint,
        "THUMBNAIL_RUNTIME": "lambda",
        "VIDEO_PREFIX": "videos/",
        "OUTPUT_PREFIX": "thumbnails/",
        "POWERTOOLS_SERVICE_NAME": "thumbnail-worker",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "RETRY_QUEUE_URL": "http://unused.invalid/123456789012/retries",
    }
    return function, process_env


def measure(runs: int, quick: bool, log_dir: Path) -> list[Sample]:
    videos = _videos(quick)
    samples: list[Sample] = []
    with running_emulator() as emulator, counting_proxy(emulator.endpoint_url, Link()) as proxy:
        s3 = emulator.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        env = {**emulator.environment, "PATH": "/usr/bin:/bin"}
        function, process_env = _function(proxy.endpoint_url, env)
        for name, path in videos.items():
            key = f"videos/{path.name}"
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
            job = {"bucket": BUCKET, "key": key, "event_time": "2026-01-01T00:00:00Z", "attempt": 1}
            for _ in range(runs):  # cold: a new environment each time, then warm jobs in it
                environment = ExecutionEnvironment(
                    function, REPO_ROOT / "container", process_env, log_dir / f"{uuid.uuid4().hex}.log"
                )
                try:
                    samples += _one_environment(environment, name, job, warm_jobs=2)
                finally:
                    environment.close()
    return samples


def _one_environment(
    environment: ExecutionEnvironment, video: str, job: Mapping[str, Any], warm_jobs: int
) -> list[Sample]:
    samples = []
    with _peak_rss(environment.process.pid) as peak:
        started = time.monotonic()
        if environment.start() is None:
            raise RuntimeError(f"the environment did not start: {environment.error}")
        init_s = time.monotonic() - started
        for index in range(1 + warm_jobs):
            began = time.monotonic()
            answer = environment.invoke(str(uuid.uuid4()), job)
            if answer.get("result", {}).get("exit_code") != 0:
                raise RuntimeError(f"the job failed: {answer}")
            cold = index == 0
            samples.append(Sample(video, cold, init_s if cold else 0.0, time.monotonic() - began, peak[0]))
    return samples


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def model(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """p50 and p95, upload to manifest, per runtime: the platform stages plus the worker measured here.

    The worker function's p50 is a warm job (cold starts are rare), its p95 a cold one; a Fargate
    task is always a new process: a cold job.
    """
    warm = [s.worker_s for s in samples if not s.cold]
    cold = [s.worker_s for s in samples if s.cold]
    table = {}
    for runtime, p50_worker, p95_worker in (
        ("lambda", statistics.median(warm), percentile(cold, 0.95)),
        ("fargate", statistics.median(cold), percentile(cold, 0.95)),
    ):
        stages = [s for s in STAGES if s[1] in {"both", runtime}]
        table[runtime] = {
            "p50_s": round(p50_worker + sum(s[2] for s in stages), 2),
            "p95_s": round(p95_worker + sum(s[3] for s in stages), 2),
            "worker_p50_s": round(p50_worker, 2),
            "worker_p95_s": round(p95_worker, 2),
        }
    return table


def render(samples: list[Sample], table: Mapping[str, Mapping[str, float]]) -> str:
    lines = [
        BEGIN,
        "## Lambda or Fargate: upload to manifest (`make bench-latency`)",
        "",
        "Generated by `python -m bench.latency`; raw figures in "
        "[`../bench/results/latency.json`](../bench/results/latency.json). The worker's time is measured "
        "here in the worker function's own process (the local Lambda runner's execution environment): "
        "cold = a new process (init: imports) and its first job, warm = the same process's 2nd and 3rd "
        "jobs; S3 is the emulator behind a 30 ms / 100 MB/s link; default options (`auto`, JPEG). "
        "Platform stages are published figures or marked assumptions. " + CAVEAT,
        "",
        "| video | job | runs | init s (p50) | job s (p50) | job s (p95) | peak RSS MB (max) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for video in dict.fromkeys(s.video for s in samples):
        for cold in (True, False):
            chosen = [s for s in samples if s.video == video and s.cold == cold]
            lines.append(
                f"| {video} | {'cold' if cold else 'warm'} | {len(chosen)} "
                f"| {statistics.median(s.init_s for s in chosen):.2f} "
                f"| {statistics.median(s.job_s for s in chosen):.2f} "
                f"| {percentile([s.job_s for s in chosen], 0.95):.2f} "
                f"| {max(s.peak_rss_mb for s in chosen):.0f} |"
            )
    lines += ["", "| stage | runtime | p50 s | p95 s | source |", "|---|---|---:|---:|---|"]
    lines += [
        f"| {stage} | {runtime} | {p50:g} | {p95:g} | {source} |"
        for stage, runtime, p50, p95, source in STAGES
    ]
    lines += [
        "| the worker (measured here: warm p50, cold p95 for Lambda; cold for Fargate) | each | "
        f"{table['lambda']['worker_p50_s']:g} / {table['fargate']['worker_p50_s']:g} | "
        f"{table['lambda']['worker_p95_s']:g} / {table['fargate']['worker_p95_s']:g} | this run |",
        "",
        "| runtime | upload to manifest, p50 (modelled) | p95 (modelled) | target |",
        "|---|---:|---:|---|",
        f"| `auto` / `lambda` (the worker function) | {table['lambda']['p50_s']:.1f} s "
        f"| {table['lambda']['p95_s']:.1f} s | under 3 s (p50): "
        f"{'met' if table['lambda']['p50_s'] < 3 else 'not met'} |",
        f"| `fargate` (a task per video) | {table['fargate']['p50_s']:.1f} s "
        f"| {table['fargate']['p95_s']:.1f} s | 40-60 s expected |",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_report(section: str) -> None:
    replace_block(REPORT, section, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument(
        "--runs", type=int, default=5, help="cold environments per video (each then takes 2 warm jobs)"
    )
    parser.add_argument("--quick", action="store_true", help="10-second videos, for a smoke run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as logs:
        samples = measure(args.runs, args.quick, Path(logs))
    table = model(samples)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"samples": [s.__dict__ for s in samples], "model": table}, indent=2) + "\n",
        encoding="utf-8",
    )
    section = render(samples, table)
    if not args.quick:
        write_report(section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
