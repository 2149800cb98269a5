"""Fargate, locally: run the worker for every task that RunTask started in the emulator.

The emulator only records tasks. This runner polls the cluster, and for each new task runs the
task definition's essential container as ECS would: the container's environment, then the
RunTask overrides for the container of that name, as a subprocess (or in the real image when a
Docker engine is present and asked for), within the task's memory, then stops the task with the
worker's exit code and sends ECS's "ECS Task State Change" event to EventBridge. A FaultPlan
(faults.py) makes chosen tasks fail the ways Fargate tasks do. A task carries one job
(THUMBNAIL_JOB) or several (THUMBNAIL_JOBS, docs/contract.md "Several jobs per task").
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from devkit.environment import process_basics
from devkit.paths import REPO_ROOT
from local_stack.emulator import Emulator
from local_stack.faults import FaultKind, FaultPlan, StalledEndpoint, closed_port_url
from local_stack.task_events import OUT_OF_MEMORY_REASON, ContainerStop, TaskStop, stopped_event, task_size

LOG = logging.getLogger(__name__)
DOCKERFILE = REPO_ROOT / "container" / "Dockerfile"
LOCAL_IMAGE = "thumbnail-creator-worker:local"
TIMED_OUT_EXIT_CODE = 137  # what ECS reports for a container killed with SIGKILL
STOP_TIMEOUT_S = 30.0  # ECS's default stopTimeout between SIGTERM and SIGKILL
WATCH_INTERVAL_S = 0.05
# Below what a Python worker needs once it has imported PyAV: the out-of-memory fault's limit.
STARVED_MEMORY_MIB = 24
CANNOT_PULL_REASON = "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
SPOT_REASON = "Your Spot Task was interrupted."
JOB_VARIABLE, JOBS_VARIABLE = "THUMBNAIL_JOB", "THUMBNAIL_JOBS"


@dataclass(frozen=True)
class TaskOutcome:
    """One task the runner ran and stopped."""

    task_arn: str
    jobs: tuple[Mapping[str, Any], ...]  # THUMBNAIL_JOB's one or THUMBNAIL_JOBS's, as the launcher sent them
    exit_code: int | None  # None: the container never started
    stopped_reason: str
    log_path: Path
    fault: str | None = None
    stop_code: str = "EssentialContainerExited"
    container_reason: str = ""
    memory: int = 0  # MiB the task ran with
    event: Mapping[str, Any] = field(default_factory=dict)  # the STOPPED event sent to EventBridge

    started_at: float = 0.0  # time.monotonic() when the runner saw the task RUNNING, and when it stopped it
    stopped_at: float = 0.0

    @property
    def job(self) -> Mapping[str, Any] | None:
        """The task's first job (its only one, but for a batch task)."""
        return self.jobs[0] if self.jobs else None

    @property
    def key(self) -> str | None:
        """The first job's key (see `keys` for a batch task's)."""
        return None if self.job is None else self.job.get("key")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(str(job.get("key")) for job in self.jobs)


def task_jobs(env: Mapping[str, str]) -> tuple[Mapping[str, Any], ...]:
    """The jobs a task's environment carries: THUMBNAIL_JOBS's, else THUMBNAIL_JOB's one.

    What does not parse as a job object is left out (the worker refuses such a task: exit 2).
    """
    several, one = env.get(JOBS_VARIABLE), env.get(JOB_VARIABLE)
    parsed = _json(several) if several else [_json(one)] if one else []
    return tuple(job for job in (parsed if isinstance(parsed, list) else []) if isinstance(job, dict))


def override_jobs(task: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The jobs in a described task's container overrides (the launcher puts them there)."""
    for override in task.get("overrides", {}).get("containerOverrides", []):
        jobs = task_jobs({item["name"]: item["value"] for item in override.get("environment", [])})
        if jobs:
            return jobs
    return ()


def dockerfile_command(dockerfile: Path | None = None) -> list[str]:
    """ENTRYPOINT + CMD of the worker image, exec form only (no shell strings are run here)."""
    dockerfile = dockerfile or DOCKERFILE
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"\s*(ENTRYPOINT|CMD)\s+(.*)$", line, flags=re.IGNORECASE)
        if not match:
            continue
        instruction, argument = match.group(1).upper(), match.group(2).strip()
        try:
            parsed = json.loads(argument)
        except json.JSONDecodeError:
            parsed = None
        if not (isinstance(parsed, list) and all(isinstance(part, str) for part in parsed)):
            raise ValueError(f"{dockerfile}: {instruction} must use the exec form (a JSON array)")
        found[instruction] = parsed  # the last one wins, as in Docker
    command = found.get("ENTRYPOINT", []) + found.get("CMD", [])
    if not command:
        raise ValueError(f"{dockerfile}: no ENTRYPOINT or CMD")
    return command


def container_argv(
    container: Mapping[str, Any], override: Mapping[str, Any], image_command: Sequence[str]
) -> list[str]:
    """The process ECS would start: entryPoint + command, each falling back to the image's."""
    if container.get("entryPoint") or override.get("command") or container.get("command"):
        entry = list(container.get("entryPoint") or [])
        command = list(override.get("command") or container.get("command") or [])
        argv = entry + command if entry else command
    else:
        argv = list(image_command)
    return argv


def local_argv(argv: Sequence[str]) -> list[str]:
    """The image's `python` is this venv's interpreter locally; anything else runs as written."""
    if argv and re.fullmatch(r"python(3(\.\d+)?)?", Path(argv[0]).name):
        return [sys.executable, *argv[1:]]
    return list(argv)


def task_environment(container: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment, then the RunTask overrides for it (later names win)."""
    env = {item["name"]: item["value"] for item in container.get("environment") or []}
    env.update({item["name"]: item["value"] for item in override.get("environment") or []})
    return env


def container_setting(ecs: Any, task_definition_arn: str, name: str) -> str:
    """A variable of the task definition's container environment (VIDEO_PREFIX, OUTPUT_PREFIX...)."""
    definition = ecs.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
    for container in definition["containerDefinitions"]:
        for item in container.get("environment", []):
            if item["name"] == name:
                return str(item["value"])
    raise KeyError(f"{name} is not in the worker task definition")


def _pairs(items: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {item["name"]: item for item in items if "name" in item}


class TaskRunner:
    """Polls the cluster for RUNNING tasks and runs each one once, a few at a time."""

    def __init__(
        self,
        emulator: Emulator,
        cluster: str,
        log_dir: Path,
        *,
        max_parallel: int = 2,
        timeout_s: float = 300.0,
        use_docker: bool = False,
        poll_interval_s: float = 0.2,
        faults: FaultPlan | None = None,
        start_delay_s: float = 0.0,
    ) -> None:
        """`start_delay_s`: each task holds its slot (and its vCPUs) this long before its container
        starts, as a Fargate task does while it is provisioned and its image pulled."""
        if faults is not None and use_docker:
            raise ValueError("faults are injected into local worker processes, not into Docker")
        self._emulator = emulator
        self._ecs = emulator.client("ecs")
        self._events = emulator.client("events")
        self._faults = faults
        self._stalled: StalledEndpoint | None = None
        self._cluster = cluster
        self._log_dir = log_dir
        self._timeout_s = timeout_s
        self._use_docker = use_docker
        self._poll_interval_s = poll_interval_s
        self._start_delay_s = start_delay_s
        self._image_command = dockerfile_command()
        # Taken now: the event pump swaps os.environ while the launcher runs (events.py).
        self._base_env = process_basics()
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="task")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_forever, name="task-runner", daemon=True)
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._started_at: dict[str, float] = {}  # task ARN -> time.monotonic() when first seen RUNNING
        self._outcomes: dict[str, TaskOutcome] = {}
        self._task_definitions: dict[str, Mapping[str, Any]] = {}
        self._processes: set[subprocess.Popen[bytes]] = set()
        self.errors: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> TaskRunner:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._emulator.pin_ecs_task_status()  # tasks stay RUNNING until this runner stops them
        if self._use_docker:
            subprocess.run(  # noqa: S603 - fixed argv, no shell
                [_docker(), "build", "--quiet", "-t", LOCAL_IMAGE, str(DOCKERFILE.parent)], check=True
            )
        if self._faults is not None:
            self._stalled = StalledEndpoint()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling; stop the workers still running as StopTask does (SIGTERM, then SIGKILL)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            running = list(self._processes)
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._stalled is not None:
            self._stalled.close()

    # -- what tests and the demo read ------------------------------------------------------
    @property
    def outcomes(self) -> dict[str, TaskOutcome]:
        with self._lock:
            return dict(self._outcomes)

    def started_count(self) -> int:
        with self._lock:
            return len(self._seen)

    def intervals(self) -> list[tuple[float, float | None]]:
        """(started, stopped) per task, in time.monotonic() seconds; stopped None: still running.

        Started: when the runner first saw the task RUNNING in the emulator (RunTask had started
        it), which is ECS's view: a task waiting for a free local worker (`max_parallel`) counts.
        """
        with self._lock:
            stopped = {arn: outcome.stopped_at for arn, outcome in self._outcomes.items()}
            return [(started, stopped.get(arn)) for arn, started in self._started_at.items()]

    def max_concurrent_tasks(self) -> int:
        """The most tasks ever running at once (`intervals`); `started_count` is how many ran in all."""
        # A stop before a start at the same instant: a task that ends as another begins is not overlap.
        intervals = self.intervals()
        edges = sorted(
            [(started, 1) for started, _ in intervals]
            + [(stopped, -1) for _, stopped in intervals if stopped is not None]
        )
        running = highest = 0
        for _, change in edges:
            running += change
            highest = max(highest, running)
        return highest

    def idle(self) -> bool:
        """Every task seen so far has finished, and the cluster has no task this runner has yet to see
        (one RunTask started since the last poll)."""
        with self._lock:
            if len(self._seen) != len(self._outcomes):
                return False
        return not self._ecs.list_tasks(cluster=self._cluster, desiredStatus="RUNNING")["taskArns"]

    # -- the loop ---------------------------------------------------------------------------
    def _poll_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception as error:  # keep polling: one bad answer must not end the runner
                LOG.exception("task runner poll failed")
                self.errors.append(repr(error))
            self._stop.wait(self._poll_interval_s)

    def _poll_once(self) -> None:
        arns: list[str] = []
        for page in self._ecs.get_paginator("list_tasks").paginate(
            cluster=self._cluster, desiredStatus="RUNNING"
        ):
            arns.extend(page["taskArns"])
        with self._lock:
            new = [arn for arn in arns if arn not in self._seen]
            self._seen.update(new)
            self._started_at.update(dict.fromkeys(new, time.monotonic()))
        for start in range(0, len(new), 100):
            described = self._ecs.describe_tasks(cluster=self._cluster, tasks=new[start : start + 100])
            for task in described["tasks"]:
                self._pool.submit(self._run_task_safely, task)

    def _run_task_safely(self, task: Mapping[str, Any]) -> None:
        try:
            self._run_task(task)
        except Exception as error:
            LOG.exception("running task %s failed", task["taskArn"])
            self.errors.append(f"{task['taskArn']}: {error!r}")
            stop = TaskStop(
                ContainerStop("", 1), "EssentialContainerExited", f"local runner error: {error!r}"
            )
            self._stop_in_emulator(task, stop)
            self._record(task, (), stop, self._log_dir / "runner-errors.log")

    def _stop_in_emulator(self, task: Mapping[str, Any], stop: TaskStop) -> None:
        """StopTask: the task leaves ListTasks(desiredStatus=RUNNING), as a stopped ECS task does
        (the launcher counts running tasks that way), and no longer counts against the vCPU quota."""
        try:
            self._ecs.stop_task(cluster=self._cluster, task=task["taskArn"], reason=stop.stopped_reason)
        except Exception as error:  # the emulator is going away with the stack: nothing left to stop
            LOG.warning("stopping task %s in the emulator failed: %r", task["taskArn"], error)

    def _task_definition(self, arn: str) -> Mapping[str, Any]:
        if arn not in self._task_definitions:
            described = self._ecs.describe_task_definition(taskDefinition=arn)
            self._task_definitions[arn] = described["taskDefinition"]
        return self._task_definitions[arn]

    def _run_task(self, task: Mapping[str, Any]) -> None:
        if self._start_delay_s:
            self._stop.wait(self._start_delay_s)
        definition = self._task_definition(task["taskDefinitionArn"])
        overrides = _pairs(task.get("overrides", {}).get("containerOverrides", []))
        (container,) = [c for c in definition["containerDefinitions"] if c.get("essential", True)]
        override = overrides.get(container["name"], {})
        env = task_environment(container, override)
        jobs = task_jobs(env)
        fault = self._faults.for_jobs(jobs) if self._faults else None
        log_path = self._log_dir / f"{task['taskArn'].rsplit('/', 1)[-1]}.log"
        if fault is FaultKind.CANNOT_PULL:
            stop = TaskStop(
                ContainerStop(container["name"], None, CANNOT_PULL_REASON),
                "TaskFailedToStart",
                CANNOT_PULL_REASON,
            )
        else:
            argv = container_argv(container, override, self._image_command)
            memory = (
                STARVED_MEMORY_MIB if fault is FaultKind.OUT_OF_MEMORY else task_size(task, definition)[1]
            )
            ended = self._run_container(argv, env, log_path, memory, fault)
            stop = _task_stop(container["name"], ended, fault)
        self._ecs.stop_task(cluster=self._cluster, task=task["taskArn"], reason=stop.stopped_reason)
        event = stopped_event(task, definition, stop)
        self._events.put_events(Entries=[event])
        self._record(task, jobs, stop, log_path, fault=fault, event=event)

    def _fault_environment(self, fault: FaultKind | None) -> dict[str, str]:
        """S3 where the fault wants it: refusing connections, or accepting and never answering."""
        if fault is FaultKind.TRANSIENT_EXIT_1:
            return {"AWS_ENDPOINT_URL": closed_port_url()}
        if fault is FaultKind.HANG and self._stalled is not None:
            return {"AWS_ENDPOINT_URL": self._stalled.url, "THUMBNAIL_DEADLINE_SECONDS": "2"}
        return {}

    def _run_container(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        memory_mib: int,
        fault: FaultKind | None,
    ) -> _Ended:
        # On AWS the task role and the ECS agent supply credentials, endpoint and region; here
        # the emulator's (or, for a fault, a dead local address), last, so that nothing the task
        # sets can point it at real AWS.
        process_env = {**self._base_env, **env, **self._emulator.environment}
        process_env.update(self._fault_environment(fault))
        with (
            tempfile.TemporaryDirectory(prefix="task-") as workdir,
            log_path.open("ab") as log,
        ):
            command = self._command(argv, env, process_env)
            with self._lock:
                if self._stop.is_set():  # stop() has already stopped the running ones
                    return _Ended(TIMED_OUT_EXIT_CODE)
                process = subprocess.Popen(  # noqa: S603 - argv from the task definition, no shell
                    command,
                    env=process_env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                self._processes.add(process)
            watch = _Watch(process, log_path, memory_mib, fault)
            try:
                return_code = watch.wait(self._timeout_s)
            except subprocess.TimeoutExpired:
                log.write(f"\nlocal runner: killed after {self._timeout_s:.0f} s\n".encode())
                return _Ended(TIMED_OUT_EXIT_CODE)
            finally:
                with self._lock:
                    self._processes.discard(process)
            # Killed by a signal: report 128 + its number, as ECS does (137 for SIGKILL).
            code = 128 - return_code if return_code < 0 else return_code
            return _Ended(code, out_of_memory=watch.out_of_memory, signalled=watch.signalled)

    def _command(self, argv: Sequence[str], env: Mapping[str, str], process_env: dict[str, str]) -> list[str]:
        if self._use_docker:
            command = [_docker(), "run", "--rm", "--network", "host"]
            for name in [*env, *self._emulator.environment]:
                command += ["-e", name]  # values come from this process env, not argv
            return command + ([LOCAL_IMAGE, *argv] if argv != list(self._image_command) else [LOCAL_IMAGE])
        process_env["PYTHONPATH"] = str(REPO_ROOT / "container")  # the image's code layout
        return local_argv(argv)

    def _record(
        self,
        task: Mapping[str, Any],
        jobs: tuple[Mapping[str, Any], ...],
        stop: TaskStop,
        log: Path,
        *,
        fault: FaultKind | None = None,
        event: Mapping[str, Any] | None = None,
    ) -> None:
        with self._lock:
            started_at = self._started_at.get(task["taskArn"], 0.0)
        outcome = TaskOutcome(
            task["taskArn"],
            jobs,
            stop.container.exit_code,
            stop.stopped_reason,
            log,
            fault=None if fault is None else fault.value,
            stop_code=stop.stop_code,
            container_reason=stop.container.reason,
            memory=int(json.loads(event["Detail"])["memory"]) if event else 0,
            event=event or {},
            started_at=started_at,
            stopped_at=time.monotonic(),
        )
        with self._lock:
            self._outcomes[task["taskArn"]] = outcome
        LOG.info(
            "task %s stopped: %s (keys %s)",
            task["taskArn"].rsplit("/", 1)[-1],
            stop.stopped_reason,
            ", ".join(outcome.keys),
        )

    def wait_idle(self, timeout_s: float, settle_s: float = 0.5) -> bool:
        """Wait until every task seen has finished and no new one appeared for `settle_s`."""
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    return True
            else:
                quiet_since = None
            time.sleep(0.1)
        return False


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


def _docker() -> str:
    docker = shutil.which("docker")
    if docker is None:
        raise RuntimeError("--docker asked for, but no docker client is on PATH")
    return docker


@dataclass(frozen=True)
class _Ended:
    exit_code: int
    out_of_memory: bool = False
    signalled: bool = False


def _task_stop(name: str, ended: _Ended, fault: FaultKind | None) -> TaskStop:
    """ECS's account of how the container ended."""
    if ended.out_of_memory:
        return TaskStop(
            ContainerStop(name, ended.exit_code, OUT_OF_MEMORY_REASON),
            "EssentialContainerExited",
            "Essential container in task exited",
        )
    if fault is FaultKind.SPOT_INTERRUPTION and ended.signalled:
        return TaskStop(ContainerStop(name, ended.exit_code), "SpotInterruption", SPOT_REASON)
    reason = f"Essential container in task exited: {name} exit code {ended.exit_code}"
    return TaskStop(ContainerStop(name, ended.exit_code), "EssentialContainerExited", reason)


def over_memory(process: subprocess.Popen[bytes], limit_bytes: int) -> bool:
    """True when the process uses more than `limit_bytes` (RSS): what the kernel's OOM killer
    would act on for a container, and Lambda for an execution environment (lambda_runner.py)."""
    try:
        return int(psutil.Process(process.pid).memory_info().rss) > limit_bytes
    except psutil.Error:
        return False


class _Watch:
    """Waits for the worker, enforcing the task's memory as the kernel's OOM killer would, and
    signalling it mid-run for the killed and Spot faults (once it has read its job)."""

    def __init__(
        self, process: subprocess.Popen[bytes], log_path: Path, memory_mib: int, fault: FaultKind | None
    ) -> None:
        self._process = process
        self._log_path = log_path
        self._limit = memory_mib * 1024 * 1024 if memory_mib else None
        self._signal = {FaultKind.KILLED: signal.SIGKILL, FaultKind.SPOT_INTERRUPTION: signal.SIGTERM}.get(
            fault  # type: ignore[arg-type]
        )
        self.out_of_memory = False
        self.signalled = False

    def wait(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while (code := self._process.poll()) is None:
            if time.monotonic() > deadline:
                self._process.kill()
                self._process.wait()
                raise subprocess.TimeoutExpired(self._process.args, timeout_s)
            self._check_memory()
            self._maybe_signal()
            time.sleep(WATCH_INTERVAL_S)
        return code

    def _check_memory(self) -> None:
        if self._limit is not None and over_memory(self._process, self._limit):
            self.out_of_memory = True
            self._process.kill()

    def _maybe_signal(self) -> None:
        if self._signal is None or self.signalled:
            return
        if b'"job received"' in self._log_path.read_bytes():
            self._process.send_signal(self._signal)
            self.signalled = True
