"""python -m local_stack demo | chaos | up | down | serve: the local stack from the command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

from devkit.paths import REPO_ROOT
from local_stack import demo, invoke
from local_stack.stack import LocalStack

STATE_DIR = demo.STATE_DIR
STATE_FILE = STATE_DIR / "state.json"
SERVE_LOG = STATE_DIR / "serve.log"
START_TIMEOUT_S = 120.0
VCPU_QUOTA_HELP = "the account's Fargate vCPU quota, enforced by RunTask as ECS does (default: none)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="one video through the whole pipeline, then stop")
    run_demo.add_argument("--video", type=Path, help="your own video (default: a generated sample)")
    run_demo.add_argument("--key", help="the S3 key to upload it under (default videos/<file name>)")
    run_demo.add_argument("--meta", help="S3 user metadata, e.g. 'thumbnail-at=7.3,thumbnail-format=png'")
    run_demo.add_argument("--out", type=Path, default=Path("demo-output"))
    run_demo.add_argument(
        "--docker", action="store_true", help="run the worker in its image (needs a Docker engine)"
    )
    run_demo.add_argument(
        "--runtime", choices=["auto", "lambda", "fargate"], help="ThumbnailRuntime (default: the template's)"
    )
    chaos = commands.add_parser(
        "chaos", help="many uploads with faults injected; exits 0 only if none is lost"
    )
    chaos.add_argument("--n", type=int, default=200, help="uploads (default 200)")
    chaos.add_argument("--fault-rate", type=float, default=0.1, help="share of uploads given a fault")
    chaos.add_argument("--seed", type=int, default=1)
    chaos.add_argument("--vcpu-quota", type=_vcpus, help=VCPU_QUOTA_HELP)
    send = commands.add_parser("invoke", help="send an S3 event JSON to the running stack's launcher")
    send.add_argument("event", type=Path, help="an S3 notification, e.g. src/events/put.json")
    send.add_argument("--state", type=Path, default=STATE_FILE)
    start = commands.add_parser("up", help="start the local stack in the background")
    start.add_argument("--vcpu-quota", type=_vcpus, help=VCPU_QUOTA_HELP)
    commands.add_parser("down", help="stop the background local stack")
    serve = commands.add_parser("serve", help="run the local stack in the foreground (what `up` starts)")
    serve.add_argument("--state", type=Path, default=STATE_FILE)
    serve.add_argument("--vcpu-quota", type=_vcpus, help=VCPU_QUOTA_HELP)
    arguments = parser.parse_args(argv)
    demo.configure_logging()
    warnings.filterwarnings("ignore", module="moto")
    if arguments.command == "demo":
        return demo.run(
            arguments.video,
            arguments.key,
            arguments.meta,
            arguments.out,
            use_docker=arguments.docker,
            runtime=arguments.runtime,
        )
    if arguments.command == "chaos":
        from local_stack import chaos as chaos_run

        return chaos_run.main(vars(arguments))
    if arguments.command == "invoke":
        return invoke.invoke(arguments.event, arguments.state)
    if arguments.command == "up":
        return up(arguments.vcpu_quota)
    if arguments.command == "down":
        return down()
    return serve_forever(arguments.state, arguments.vcpu_quota)


def _vcpus(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a vCPU quota must be > 0, got {text!r}")
    return value


def _running_state() -> dict[str, object] | None:
    try:
        state: dict[str, object] = json.loads(STATE_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid, endpoint = state.get("pid"), state.get("endpoint")
    # A stack that died without `down` leaves its pid behind, and the system may give that pid to
    # another program: only a process whose emulator still answers is taken for the stack.
    if not isinstance(pid, int) or not isinstance(endpoint, str) or not _alive(pid) or not _answers(endpoint):
        return None
    return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(endpoint: str) -> bool:
    try:
        requests.get(endpoint, timeout=5)
    except requests.RequestException:
        return False
    return True


def up(vcpu_quota: float | None = None) -> int:
    state = _running_state()
    if state is None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        STATE_FILE.unlink(missing_ok=True)
        with SERVE_LOG.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
                [
                    *(sys.executable, "-m", "local_stack", "serve", "--state", str(STATE_FILE)),
                    *(() if vcpu_quota is None else ("--vcpu-quota", f"{vcpu_quota:g}")),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `make local-up`, and Ctrl-C in that shell
                cwd=REPO_ROOT,
            )
        print(f"starting the local stack (pid {process.pid}, log {SERVE_LOG}) ...", flush=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while state is None:
            if process.poll() is not None or time.monotonic() > deadline:
                # Not left running: without a state file, `down` could not find it.
                process.kill()
                process.wait()
                print(f"the local stack did not start; see {SERVE_LOG}", file=sys.stderr)
                return 1
            time.sleep(0.3)
            state = _running_state()
    else:
        print(f"the local stack is already running (pid {state['pid']}; its own vCPU quota kept)")
    print(instructions(state))
    return 0


def instructions(state: Mapping[str, object]) -> str:
    """How to use the running stack: ready-to-paste commands, and where every log is."""
    endpoint, bucket = state["endpoint"], state["bucket"]
    task_logs = Path(str(state["task_logs"]))
    launcher_log = state.get("launcher_log") or task_logs.parent / "launcher.log"
    outputs = state.get("outputs")
    pending = outputs.get("PendingJobsQueueUrl", "") if isinstance(outputs, Mapping) else ""
    return f"""
Local stack running at {endpoint} (bucket {bucket}). In another shell (`aws` is in .venv/bin):

  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url {endpoint} s3 cp my-video.mp4 "s3://{bucket}/videos/my-video.mp4" \\
      --metadata '{{"thumbnail-at":"7.3","thumbnail-widths":"160,320"}}'
  aws --endpoint-url {endpoint} s3 ls "s3://{bucket}/thumbnails/" --recursive
  aws --endpoint-url {endpoint} s3 cp "s3://{bucket}/thumbnails/my-video.mp4.json" -

Only keys under videos/ ending in .mp4 or .MP4 start a task. Several widths: the aws CLI splits
--metadata thumbnail-widths=160,320 at the comma; write --metadata '{{"thumbnail-widths":"160,320"}}'
or --metadata 'thumbnail-widths="160,320"'.
Send your own S3 event to the launcher: make invoke EVENT=src/events/put.json
Jobs waiting for capacity (MaxConcurrentTasks, VCPU_QUOTA=; README "Quotas and bursts"):
  aws --endpoint-url {endpoint} sqs get-queue-attributes --queue-url {pending} \\
      --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible

Logs:
  launcher (skipped and rejected events, tasks started): {launcher_log}
  recovery (stopped tasks, retries, waiting jobs started): {task_logs.parent / "recovery.log"}
  worker tasks (one file per task):                      {task_logs}/
  the local stack itself:                                {SERVE_LOG}
Stop it with: make local-down"""


def down() -> int:
    state = _running_state()
    if state is None:
        print("no local stack is running")
        STATE_FILE.unlink(missing_ok=True)
        return 0
    pid = int(str(state["pid"]))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        print(f"the local stack (pid {pid}) did not stop within 30 s", file=sys.stderr)
        return 1
    STATE_FILE.unlink(missing_ok=True)
    print(f"local stack stopped (pid {pid})")
    return 0


def serve_forever(state_file: Path, vcpu_quota: float | None = None) -> int:
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    work_dir = state_file.parent / "run"
    work_dir.mkdir(parents=True, exist_ok=True)
    with LocalStack(work_dir=work_dir, vcpu_quota=vcpu_quota) as stack:
        state = {
            "pid": os.getpid(),
            "endpoint": stack.emulator.endpoint_url,
            "bucket": stack.bucket,
            "outputs": dict(stack.outputs),
            "task_logs": str(work_dir / "task-logs"),
            "launcher_log": str(work_dir / "launcher.log"),
        }
        partial = state_file.with_suffix(".partial")
        partial.write_text(json.dumps(state, indent=2), encoding="utf-8")
        partial.replace(state_file)  # `up` sees a complete file or none
        print(f"local stack ready at {stack.emulator.endpoint_url}", flush=True)
        stop.wait()
    state_file.unlink(missing_ok=True)
    print("local stack stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
