"""`make demo`: one video through the whole pipeline offline, with progress and a summary."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devkit.paths import REPO_ROOT
from local_stack.stack import LocalStack, Result, parse_metadata
from local_stack.video import make_video

STATE_DIR = REPO_ROOT / ".local-stack"
SAMPLE_VIDEO = STATE_DIR / "sample-v2-30s-720p.mp4"  # bump the version when make_video changes
SAMPLE_KEY = "videos/sample/colour-drift 720p.mp4"
DEFAULT_TIMEOUT_S = 600.0


# The terminal, taken once: while the launcher runs, sys.stdout is its log file (events.py).
_console = sys.stdout


def say(message: str) -> None:
    """A progress line."""
    show(f"[demo] {message}")


def show(line: str = "") -> None:
    print(line, file=_console, flush=True)


def sample_video() -> Path:
    if SAMPLE_VIDEO.is_file():
        say(f"sample video: {SAMPLE_VIDEO.relative_to(REPO_ROOT)} (made earlier)")
        return SAMPLE_VIDEO
    say("making the sample video (30 s, 1280x720, H.264, 2 s black intro): once, then cached ...")
    started = time.monotonic()
    make_video(SAMPLE_VIDEO)
    say(f"sample video made in {time.monotonic() - started:.0f} s: {SAMPLE_VIDEO.relative_to(REPO_ROOT)}")
    return SAMPLE_VIDEO


def run(
    video: Path | None,
    key: str | None,
    meta: str | None,
    out: Path,
    *,
    use_docker: bool = False,
    runtime: str | None = None,
) -> int:
    metadata = parse_metadata(meta)
    source = video if video is not None else sample_video()
    if not source.is_file():
        say(f"no such video file: {source}")
        return 2
    key = key or (SAMPLE_KEY if video is None else f"videos/{source.name}")
    started = time.monotonic()
    say("starting the embedded AWS emulator and deploying template.yaml ...")
    # Logs of this run (launcher.log, task-logs/): kept only when something went wrong.
    run_dir = Path(tempfile.mkdtemp(prefix="thumbnail-demo-"))
    parameters = {"ThumbnailRuntime": runtime} if runtime else {}
    code = _run_in(
        run_dir, source, key, metadata, out=out, started=started, use_docker=use_docker, parameters=parameters
    )
    if code == 0:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        show(f"logs of this run: {run_dir} (launcher.log, task-logs/)")
    return code


def _run_in(
    run_dir: Path,
    source: Path,
    key: str,
    metadata: dict[str, str],
    *,
    out: Path,
    started: float,
    use_docker: bool,
    parameters: dict[str, str],
) -> int:
    with LocalStack(work_dir=run_dir, use_docker=use_docker, parameters=parameters) as stack:
        ready_s = time.monotonic() - started
        say(f"stack ready in {ready_s:.1f} s at {stack.emulator.endpoint_url} (bucket {stack.bucket})")
        for fix in stack.deployed.fixes:
            say(f"  re-applied what the emulator dropped: {fix}")
        size = source.stat().st_size
        say(
            f"uploading {source} ({size:,} bytes) as s3://{stack.bucket}/{key}"
            + (f" with {metadata}" if metadata else "")
        )
        upload_started = time.monotonic()
        stack.upload(source, key, metadata)
        say("waiting for the S3 event, the launcher and the worker task ...")
        try:
            result = _wait_with_progress(stack, key)
        except TimeoutError as error:
            say(f"gave up: {error}")
            return 1
        elapsed = time.monotonic() - upload_started
        written = _download(stack, result, out)
        _summary(source, key, size, result, written, durations=(elapsed, time.monotonic() - started))
        return 0 if all(o.exit_code == 0 for o in result.outcomes) else 1


def _wait_with_progress(stack: LocalStack, key: str) -> Result:
    deadline = time.monotonic() + DEFAULT_TIMEOUT_S
    reported_start = False
    while True:
        if not reported_start and stack.runner.started_count():
            say("the launcher started a worker task; the worker is reading the video by ranges ...")
            reported_start = True
        if not reported_start and stack.lambda_runs_for(key):
            say("the launcher invoked the worker function; it read the video by ranges ...")
            reported_start = True
        try:
            return stack.wait_for(key, timeout_s=2.0)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
            if stack.pump.record.dead_lettered:
                raise TimeoutError("the launcher failed on the event (see the errors above)") from None


def _download(stack: LocalStack, result: Result, out: Path) -> list[Path]:
    s3 = stack.emulator.client("s3")
    output_prefix = stack.worker_setting("OUTPUT_PREFIX")
    written = []
    for key in (*result.thumbnail_keys, result.manifest_key):
        target = out / key.removeprefix(output_prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())
        written.append(target)
    return written


def find_number(document: Any, name: str) -> int | None:
    """The first value called `name` anywhere in the manifest (its layout is the worker's)."""
    values: list[Any]
    if isinstance(document, Mapping):
        if isinstance(document.get(name), int):
            return int(document[name])
        values = list(document.values())
    elif isinstance(document, list):
        values = document
    else:
        return None
    for value in values:
        found = find_number(value, name)
        if found is not None:
            return found
    return None


def _summary(
    source: Path, key: str, size: int, result: Result, written: list[Path], *, durations: tuple[float, float]
) -> None:
    pipeline_s, total_s = durations
    manifest = result.manifest
    bytes_read = find_number(manifest, "bytes_read")
    requests = find_number(manifest, "requests")
    show()
    show("Thumbnail Creator demo")
    show(f"  source      {source} -> s3://.../{key} ({size:,} bytes)")
    exit_codes = ", ".join(str(outcome.exit_code) for outcome in result.outcomes)
    show(f"  status      {manifest.get('status')} (worker exit code {exit_codes or '-'})")
    show(f"  ran in      {_where(result)}")
    frame = manifest.get("frame") or {}
    if frame:
        show(f"  frame       {frame.get('time')} s, chosen by {frame.get('chosen_by')}")
    if manifest.get("status") != "ok":
        show(f"  error       {json.dumps(manifest.get('error', manifest))[:500]}")
    if bytes_read is not None:
        share = f" ({bytes_read / size:.1%} of the video)" if size else ""
        show(f"  read        {bytes_read:,} bytes from S3 in {requests} request(s){share}")
    show(f"  time        {pipeline_s:.1f} s from upload to thumbnails ({total_s:.1f} s with start-up)")
    show("  written")
    for path in written:
        show(f"    {path} ({path.stat().st_size:,} bytes)")
    for outcome in result.outcomes:
        if outcome.exit_code != 0:
            show(f"  worker log  {outcome.log_path}")
            _console.write(outcome.log_path.read_text(encoding="utf-8", errors="replace")[-3000:])


def _where(result: Result) -> str:
    """Where the job ran, from the manifest's `runtime`, with what the Lambda runner saw."""
    runs = ", ".join(
        f"{'cold' if run.cold else 'warm'} start, {run.duration_ms / 1000:.1f} s"
        + (f", {run.error_type}" if run.error_type else "")
        + (
            f", handed off: {run.result['handed_off']}"
            if isinstance(run.result, dict) and run.result.get("handed_off")
            else ""
        )
        for run in result.lambda_runs
    )
    where = {"lambda": "the worker function (Lambda)", "fargate": "a Fargate task"}.get(
        str(result.runtime), str(result.runtime)
    )
    return where + (f" (worker function: {runs})" if runs else "")


def configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
