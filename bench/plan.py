"""Run the cases: every video, position and method, alternating methods, on each server; then the
warm case (bench/warm.py: several videos in one worker process) on the range server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import methods, warm
from bench.minimum import Minimum, physical_minimum
from bench.range_server import Link, RunningServer, counting_proxy, range_server
from bench.videos import HEIGHT, WIDTH, Video

BUCKET = "bench"
METHODS = ("original", "worker", "ffmpeg-url", "ffmpegthumbnailer-url")
PEERS = ("ffmpeg-url", "ffmpegthumbnailer-url")
POSITIONS = ("1s", "50%", "90%")
WARM_POSITIONS = ("50%", "90%")


@dataclass(frozen=True)
class Plan:
    videos: list[Video]
    servers: tuple[str, ...] = ("range", "moto")
    methods: tuple[str, ...] = METHODS
    positions: tuple[str, ...] = POSITIONS
    auto: bool = True
    link: Link = field(default_factory=Link)
    moto_max_seconds: float = 600.0  # moto holds objects in memory and reads them whole per GET
    moto_positions: tuple[str, ...] = ("50%",)
    # The original design's cost is a whole download plus decoding from the start to the frame,
    # whatever the moov placement (the file is local by then). On videos longer than this it runs
    # only with moov at the front, at 1 s and the middle, to keep `make bench` under 20 minutes.
    original_long_limit_s: float | None = 600.0
    repeats: int = 1
    warm_positions: tuple[str, ...] = WARM_POSITIONS  # () for no warm case

    def available(self) -> tuple[str, ...]:
        """The methods that can run here: ffmpegthumbnailer only when installed."""
        return tuple(
            m for m in self.methods if m != "ffmpegthumbnailer-url" or methods.ffmpegthumbnailer_exe()
        )

    def runs(self, method: str, server: str, video: Video, spec: str) -> bool:
        if server == "moto" and spec not in self.moto_positions:
            return False
        if (
            method == "original"
            and self.original_long_limit_s is not None
            and video.seconds > self.original_long_limit_s
        ):
            return not video.moov_at_end and spec in ("1s", "50%")
        return True


def position_seconds(spec: str, video: Video) -> float:
    if spec.endswith("%"):
        return round(video.seconds * float(spec[:-1]) / 100, 3)
    return float(spec.removesuffix("s"))


@contextmanager
def serving(server: str, videos: list[Video], link: Link) -> Iterator[RunningServer]:
    """The videos in bucket `bench`, behind a server that counts requests and body bytes."""
    objects = {v.key: v.path for v in videos}
    if server == "range":
        with range_server(BUCKET, objects, link) as running:
            yield running
        return
    from local_stack.emulator import running_emulator

    with running_emulator() as emulator:
        s3 = emulator.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for key, path in objects.items():
            s3.upload_file(str(path), BUCKET, key)
        # No modelled latency in front of moto: it is here for API fidelity and byte counts.
        with counting_proxy(emulator.endpoint_url, Link(0.0, 0.0)) as running:
            yield running


def run_plan(
    plan: Plan, log: Callable[[str], None] = print, keep_outputs: Path | None = None
) -> list[dict[str, Any]]:
    """Run every case of the plan; with `keep_outputs`, copy each output to <that>/<case>/<method>/."""
    cases: list[dict[str, Any]] = []
    for server in plan.servers:
        videos = [v for v in plan.videos if server == "range" or v.seconds <= plan.moto_max_seconds]
        if not videos:
            continue
        log(f"server {server}: {len(videos)} videos")
        with serving(server, videos, plan.link) as running:
            env = methods.environment(running.endpoint_url)
            session = _Session(plan, server, running, env, log, keep_outputs)
            for video in videos:
                cases.extend(session.run_video(video))
            if server == "range" and "worker" in plan.methods:
                for spec in plan.warm_positions:
                    cases.extend(warm.run_warm(videos, spec, running, env, log, bucket=BUCKET))
    return cases


@dataclass
class _Session:
    """The cases of one server: every position and repeat of each video, then `auto`."""

    plan: Plan
    server: str
    running: RunningServer
    env: dict[str, str]
    log: Callable[[str], None]
    keep_outputs: Path | None
    turn: int = 0  # alternates which method goes first

    def run_video(self, video: Video) -> list[dict[str, Any]]:
        cases: list[dict[str, Any]] = []
        for spec in self.plan.positions:
            chosen = [m for m in self.plan.available() if self.plan.runs(m, self.server, video, spec)]
            if chosen:
                position = position_seconds(spec, video)
                minimum = physical_minimum(video.path, position)
                for repeat in range(self.plan.repeats):
                    cases.extend(
                        self._run_methods(
                            chosen, video, spec, position=position, minimum=minimum, repeat=repeat
                        )
                    )
        if self.plan.auto and "worker" in self.plan.methods:
            cases.append(self._run_auto(video))
        return cases

    def _run_methods(
        self, chosen: list[str], video: Video, spec: str, *, position: float, minimum: Minimum, repeat: int
    ) -> list[dict[str, Any]]:
        """Each chosen method once at `position`, alternating which goes first, so neither always
        meets a warm page cache; their outputs compared when both methods ran."""
        order = chosen if self.turn % 2 == 0 else list(reversed(chosen))
        self.turn += 1
        cases: list[dict[str, Any]] = []
        outputs: dict[str, Path] = {}
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            for method in order:
                out_dir = Path(scratch) / method
                out_dir.mkdir()
                case = self._case(
                    method, video, spec, position=position, minimum=minimum, out_dir=out_dir, repeat=repeat
                )
                if self.keep_outputs is not None:
                    name = f"{self.server}-{Path(video.key).stem}-{spec.replace('%', 'pc')}-{repeat}"
                    shutil.copytree(out_dir, self.keep_outputs / name / method)
                outputs[method] = out_dir
                cases.append(case)
            if "worker" in outputs:  # how far each method's picture is from the worker's (0-255)
                reference = _png_in(outputs["worker"]) or Path("-")
                for case in cases:
                    if case["method"] != "worker":
                        found = _png_in(outputs[case["method"]]) or Path("-")
                        case["mean_abs_diff_vs_worker"] = methods.mean_abs_difference(found, reference)
        return cases

    def _run_auto(self, video: Video) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            return self._case(
                "worker", video, "auto", position=None, minimum=None, out_dir=Path(scratch), repeat=0
            )

    def _case(
        self,
        method: str,
        video: Video,
        spec: str,
        *,
        position: float | None,
        minimum: Minimum | None,
        out_dir: Path,
        repeat: int,
    ) -> dict[str, Any]:
        case = _run_case(
            method,
            video=video,
            spec=spec,
            position=position,
            minimum=minimum,
            running=self.running,
            env=self.env,
            out_dir=out_dir,
        )
        case.update(server=self.server, repeat=repeat)
        self.log(_describe(case))
        return case


def _run_case(
    method: str,
    *,
    video: Video,
    spec: str,
    position: float | None,
    minimum: Minimum | None,
    running: RunningServer,
    env: dict[str, str],
    out_dir: Path,
) -> dict[str, Any]:
    command = _command(method, video, position, running, out_dir)
    running.counters.reset()
    run = methods.measure(command, env)
    requests, bytes_sent = running.counters.snapshot()
    reported = run.reported()
    png = _png_in(out_dir)
    size = methods.png_size(png) if png else None
    case: dict[str, Any] = {
        "method": method,
        "video": video.key,
        "video_seconds": video.seconds,
        "video_bytes": video.size,
        "moov_at_end": video.moov_at_end,
        "at": spec,
        "position_s": position if position is not None else _reported_position(reported),
        "wall_s": round(run.wall_s, 3),
        "bytes_read": bytes_sent,
        "requests": requests,
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "min_bytes": None,
        "ok": run.returncode == 0 and size == (WIDTH, HEIGHT),
        "exit_code": run.returncode,
        "output_size": list(size) if size else None,
        "request_log": running.counters.requests_log(),
    }
    if method == "original":
        case["original_timings_s"] = reported or None
    if method == "worker":
        # The worker's own accounting (manifest `io`, `timings_ms`), to cross-check the server's.
        io = reported.get("io", {})
        case["worker_reported_bytes"] = io.get("bytes_read")
        case["worker_reported_requests"] = io.get("requests")
        case["worker_timings_ms"] = reported.get("timings_ms")
    if minimum is None and case["position_s"] is not None:
        minimum = physical_minimum(video.path, case["position_s"])  # auto: the frame it chose
    if minimum is not None:
        case.update(min_bytes=minimum.total, moov_bytes=minimum.moov_bytes, gop_bytes=minimum.gop_bytes)
    if run.returncode != 0:
        case["stderr_tail"] = run.stderr.strip()[-600:]
    return case


def _command(
    method: str, video: Video, position: float | None, running: RunningServer, out_dir: Path
) -> list[str]:
    if method == "worker":
        return methods.worker_command(
            BUCKET, video.key, "auto" if position is None else f"{position:g}", out_dir
        )
    assert position is not None
    if method == "original":
        return methods.original_command(BUCKET, video.key, position, out_dir)
    url = methods.presigned_url(running.endpoint_url, BUCKET, video.key)
    if method == "ffmpeg-url":
        return methods.ffmpeg_url_command(url, position, out_dir)
    exe = methods.ffmpegthumbnailer_exe()
    assert exe is not None and method == "ffmpegthumbnailer-url"
    return methods.ffmpegthumbnailer_command(exe, url, position, out_dir)


def _png_in(directory: Path) -> Path | None:
    return next(iter(sorted(directory.rglob("*.png"))), None)


def _reported_position(manifest: dict[str, Any]) -> float | None:
    """The frame time the worker's manifest reports (`frame.time`)."""
    value = manifest.get("frame", {}).get("time")
    return float(value) if isinstance(value, int | float) else None


def _describe(case: dict[str, Any]) -> str:
    flag = "" if case["ok"] else f"  FAILED (exit {case['exit_code']})"
    return (
        f"  {case['server']:5} {case['method']:21} {case['video'].split('/')[-1]:34} at {case['at']:>4}: "
        f"{case['wall_s']:7.2f} s {case['bytes_read'] / 1e6:9.2f} MB {case['requests']:4} req "
        f"{case['peak_rss_mb']:6.0f} MB RSS{flag}"
    )
