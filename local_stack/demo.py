"""`make demo`: one video through the whole pipeline offline, with progress and a summary."""

from __future__ import annotations

import glob
import json
import logging
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from devkit.paths import REPO_ROOT
from local_stack import demo_page, keys
from local_stack.stack import LocalStack, Result, parse_metadata
from local_stack.video import make_video

STATE_DIR = REPO_ROOT / ".local-stack"
SAMPLE_VIDEO = STATE_DIR / "sample-v2-30s-720p.mp4"  # bump the version when make_video changes
SAMPLE_KEY = "videos/sample/colour-drift 720p.mp4"
DEFAULT_TIMEOUT_S = 600.0
# No event for the key in this long: S3 did not notify the launcher (the filters are checked first).
EVENT_TIMEOUT_S = 30.0
# The logs of a demo that went wrong (launcher.log, task-logs/); `make clean` removes them.
RUNS_DIR = STATE_DIR / "demo-runs"
# The outputs of one video beside its manifest: <rest>.<ext> or <rest>.<width>w.<ext>.
_THUMBNAIL_SUFFIX = re.compile(r"(?:\d+w\.)?(?:jpeg|jpg|png|webp)")
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


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


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


def run(
    video: Path | None,
    key: str | None,
    meta: str | None,
    out: Path,
    *,
    use_docker: bool = False,
    runtime: str | None = None,
) -> int:
    """`runtime`: the stack's ThumbnailRuntime (auto, lambda, fargate); None, the template's default."""
    try:
        return _run(video, key, meta, out, use_docker=use_docker, runtime=runtime)
    except KeyboardInterrupt:  # before the stack started or after it stopped: nothing left running
        say("interrupted")
        return INTERRUPTED


def _run(
    video: Path | None, key: str | None, meta: str | None, out: Path, *, use_docker: bool, runtime: str | None
) -> int:
    try:
        # Storyboard, stills and preview for the demo page (issue 13), unless --meta says otherwise.
        metadata = {**demo_page.DEMO_METADATA, **parse_metadata(meta)}
        source, key = _source_and_key(video, key)
    except (DemoError, ValueError) as error:
        say(f"error: {error}")
        return 2
    started = time.monotonic()
    say("starting the embedded AWS emulator and deploying template.yaml ...")
    # Logs of this run (launcher.log, task-logs/): kept only when something went wrong.
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=RUNS_DIR))
    parameters = {"ThumbnailRuntime": runtime} if runtime else {}
    code = _run_in(
        run_dir, source, key, metadata, out=out, started=started, use_docker=use_docker, parameters=parameters
    )
    if code in (0, INTERRUPTED):
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        show(f"logs of this run: {_shown(run_dir)} (launcher.log, task-logs/; `make clean` removes them)")
    return code


def _source_and_key(video: Path | None, key: str | None) -> tuple[Path, str]:
    """The video to upload and its key, checked against the stack's notification filters first."""
    filters = keys.notification_filters()
    if video is not None:
        # `make demo VIDEO=~/x.mp4`: whether ~ is expanded depends on the shell (zsh does not).
        video = video.expanduser()
        if not video.is_file():
            raise DemoError(f"no such video file: {video}")
    key = key or (SAMPLE_KEY if video is None else keys.default_key(video, filters))
    problem = keys.check(key, filters)
    if problem:
        raise DemoError(f"{problem}.\n        For example: make demo KEY='{keys.suggest(key, filters)}'")
    return (video if video is not None else sample_video()), key


def _shown(path: Path) -> Path:
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


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
    previous = signal.getsignal(signal.SIGINT)
    try:
        with (
            LocalStack(work_dir=run_dir, use_docker=use_docker, parameters=parameters) as stack,
            _quiet_clean_up(),
        ):
            return _through_the_stack(stack, source, key, metadata, out=out, started=started)
    except KeyboardInterrupt:
        # LocalStack has stopped what it started (the emulator, the launcher, the worker tasks).
        say("interrupted: the local stack and its worker tasks are stopped")
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _quiet_clean_up() -> Iterator[None]:
    """After a first Ctrl-C, a second one must not cut the stack's clean-up short."""
    try:
        yield
    except KeyboardInterrupt:
        say("interrupted: stopping the local stack ...")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise


def _through_the_stack(
    stack: LocalStack, source: Path, key: str, metadata: dict[str, str], *, out: Path, started: float
) -> int:
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
    written += demo_page.from_stack(stack, result, out, source)  # extra outputs and index.html
    _summary(source, key, size, result, written, durations=(elapsed, time.monotonic() - started))
    return 0 if all(o.exit_code == 0 for o in result.outcomes) else 1


def _wait_with_progress(stack: LocalStack, key: str) -> Result:
    started = time.monotonic()
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
            waited = time.monotonic() - started
            problem = _stalled(stack, key, waited, task_started=reported_start)
            if problem is not None:
                raise TimeoutError(problem) from None
            if waited > DEFAULT_TIMEOUT_S:
                raise TimeoutError(f"no thumbnails for {key!r} after {waited:.0f} s") from None


def _stalled(stack: LocalStack, key: str, waited: float, *, task_started: bool) -> str | None:
    """Why no thumbnail can come any more, or None while one still may."""
    if stack.pump.record.dead_lettered:
        return f"the launcher failed on the event after {waited:.0f} s (see the errors above)"
    if task_started:
        return None
    handled = [i for i in list(stack.pump.record.invocations) if key in _event_keys(i.event)]
    done = [i.result for i in handled if i.error is None and isinstance(i.result, Mapping)]
    started = ("tasks_started", "repeated_events", "lambda_jobs_started")
    if done and not any(r.get(name) for r in done for name in started):
        return f"the launcher started no task for {key!r} (its summary: {json.dumps(done[-1])})"
    if not handled and waited > EVENT_TIMEOUT_S:
        return f"no S3 event for {key!r} reached the launcher in {waited:.0f} s"
    return None


def _event_keys(event: Mapping[str, Any]) -> set[str]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    found = set()
    for record in records if isinstance(records, list) else []:
        raw = (((record or {}).get("s3") or {}).get("object") or {}).get("key")
        if isinstance(raw, str):
            found.add(unquote_plus(raw))  # S3 sends keys URL-encoded, spaces as +
    return found


def _download(stack: LocalStack, result: Result, out: Path) -> list[Path]:
    s3 = stack.emulator.client("s3")
    output_prefix = stack.worker_setting("OUTPUT_PREFIX")
    removed = clear_earlier_outputs(out / result.manifest_key.removeprefix(output_prefix))
    if removed:
        say(f"removed {len(removed)} file(s) an earlier run wrote for this key in {out}")
    written = []
    for key in (*result.thumbnail_keys, result.manifest_key):
        target = out / key.removeprefix(output_prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())
        written.append(target)
    return written


def clear_earlier_outputs(manifest: Path) -> list[Path]:
    """Remove the manifest and thumbnails an earlier run wrote for the same key (other keys' stay)."""
    stem = manifest.name.removesuffix(".json")
    removed = []
    for path in manifest.parent.glob(glob.escape(stem) + ".*"):
        rest = path.name[len(stem) + 1 :]
        if path.is_file() and (rest == "json" or _THUMBNAIL_SUFFIX.fullmatch(rest)):
            path.unlink()
            removed.append(path)
    return sorted(removed)


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
    for warning in manifest.get("warnings") or []:
        show(f"  warning     {warning}")
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
    for noisy in ("werkzeug", "moto", "botocore", "urllib3", "samtranslator"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
