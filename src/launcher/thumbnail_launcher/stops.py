"""An "ECS Task State Change" event for a stopped worker task -> its job and why it stopped.

The event's shape is AWS's (ECS developer guide, "Amazon ECS task state change events"; a sample:
src/events/task-stopped.json). Fields that ECS leaves out for a task that never started
(`exitCode`, `startedAt`) are optional here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from thumbnail_launcher.jobs import Job
from thumbnail_launcher.tasks import JOB_VARIABLE, JOBS_VARIABLE

# The worker's exit codes (README "Exit codes"); 124 as `timeout(1)` uses it.
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INVALID_OPTIONS = 2
EXIT_UNUSABLE_VIDEO = 3
EXIT_DEADLINE = 124
EXIT_KILLED = 137  # 128 + SIGKILL: out of memory, or StopTask after the stop timeout
EXIT_TERMINATED = 143  # 128 + SIGTERM: StopTask, a deploy, a Spot interruption notice

# ECS's container reason when the kernel's OOM killer ended it (ECS troubleshooting guide,
# "Amazon ECS stopped tasks error messages": "OutOfMemoryError: Container killed due to memory usage").
OUT_OF_MEMORY_REASON = "OutOfMemoryError"


class StopKind(StrEnum):
    """Why a worker task stopped, as far as the recovery function cares."""

    SUCCEEDED = "succeeded"
    REPORTED = "reported"  # exit 2 or 3: the worker wrote the error manifest itself
    FAILED_TO_START = "failed_to_start"
    OUT_OF_MEMORY = "out_of_memory"
    SPOT_INTERRUPTION = "spot_interruption"
    KILLED = "killed"
    TERMINATED = "terminated"
    WORKER_ERROR = "worker_error"
    DEADLINE = "deadline_exceeded"
    UNEXPECTED_EXIT = "unexpected_exit"


RETRYABLE = frozenset(
    {
        StopKind.FAILED_TO_START,
        StopKind.OUT_OF_MEMORY,
        StopKind.SPOT_INTERRUPTION,
        StopKind.KILLED,
        StopKind.TERMINATED,
        StopKind.WORKER_ERROR,
        StopKind.DEADLINE,
    }
)


class NotAWorkerTaskError(ValueError):
    """The event is not a stopped task of this stack's worker, or carries no readable job."""


@dataclass(frozen=True)
class StoppedTask:
    task_arn: str
    job: Job
    exit_code: int | None
    container_reason: str
    stop_code: str
    stopped_reason: str
    cpu: int
    memory: int
    capacity_provider: str | None
    # A batch task's jobs in running order (THUMBNAIL_JOBS); empty for a one-job task. `job` is the first.
    batch: tuple[Job, ...] = ()

    @property
    def jobs(self) -> tuple[Job, ...]:
        return self.batch or (self.job,)

    @property
    def kind(self) -> StopKind:
        return classify(self)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def describe(self) -> dict[str, Any]:
        """What the error manifest and the failed-jobs message say about this stop."""
        return {
            "task_arn": self.task_arn,
            "kind": self.kind.value,
            "exit_code": self.exit_code,
            "stop_code": self.stop_code,
            "stopped_reason": self.stopped_reason,
            "container_reason": self.container_reason,
            "cpu": self.cpu,
            "memory": self.memory,
            "capacity_provider": self.capacity_provider,
        }


def classify(task: StoppedTask) -> StopKind:
    """Exit code first (the worker's own verdict), then ECS's stop code and container reason."""
    code = task.exit_code
    if task.stop_code == "SpotInterruption":
        return StopKind.SPOT_INTERRUPTION
    if code is None or task.stop_code == "TaskFailedToStart":
        # CannotPullContainerError, ResourceInitializationError, no capacity...: nothing ran.
        return StopKind.FAILED_TO_START
    by_code = {
        EXIT_OK: StopKind.SUCCEEDED,
        EXIT_INVALID_OPTIONS: StopKind.REPORTED,
        EXIT_UNUSABLE_VIDEO: StopKind.REPORTED,
        EXIT_UNEXPECTED: StopKind.WORKER_ERROR,
        EXIT_DEADLINE: StopKind.DEADLINE,
        EXIT_TERMINATED: StopKind.TERMINATED,
    }
    if code == EXIT_KILLED:
        return StopKind.OUT_OF_MEMORY if OUT_OF_MEMORY_REASON in task.container_reason else StopKind.KILLED
    return by_code.get(code, StopKind.UNEXPECTED_EXIT)


def parse_stopped_task(detail: dict[str, Any], container_name: str) -> StoppedTask:
    """The stopped task of an event's `detail`; raises NotAWorkerTaskError when it has no job."""
    if detail.get("lastStatus") != "STOPPED":
        raise NotAWorkerTaskError(f"task is {detail.get('lastStatus')!r}, not STOPPED")
    task_arn = str(detail.get("taskArn", ""))
    container = next((c for c in detail.get("containers", []) if c.get("name") == container_name), None)
    if container is None:
        raise NotAWorkerTaskError(f"task {task_arn} has no container named {container_name!r}")
    try:
        jobs = _jobs(_environment(detail, container_name))
    except (ValueError, TypeError, KeyError) as error:
        raise NotAWorkerTaskError(
            f"task {task_arn} carries no readable {JOB_VARIABLE} or {JOBS_VARIABLE}: {error}"
        ) from None
    exit_code = container.get("exitCode")
    return StoppedTask(
        task_arn=task_arn,
        job=jobs[0],
        batch=jobs if len(jobs) > 1 else (),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        container_reason=str(container.get("reason", "")),
        stop_code=str(detail.get("stopCode", "")),
        stopped_reason=str(detail.get("stoppedReason", "")),
        # Task-level size as Fargate ran it (strings in the event): the next attempt's base.
        cpu=int(detail.get("cpu") or 0),
        memory=int(detail.get("memory") or 0),
        capacity_provider=detail.get("capacityProviderName"),
    )


def _environment(detail: dict[str, Any], container_name: str) -> dict[str, str]:
    for override in detail.get("overrides", {}).get("containerOverrides", []):
        if override.get("name") == container_name:
            return {str(v.get("name")): str(v.get("value", "")) for v in override.get("environment", [])}
    return {}


def _jobs(environment: dict[str, str]) -> tuple[Job, ...]:
    """The task's job, or its batch of jobs (a non-empty JSON array)."""
    if JOBS_VARIABLE in environment:
        items = json.loads(environment[JOBS_VARIABLE])
        if not isinstance(items, list) or not items:
            raise ValueError(f"{JOBS_VARIABLE} is not a non-empty JSON array")
        return tuple(Job.from_contract(item) for item in items)
    if JOB_VARIABLE not in environment:
        raise ValueError("neither is in the container overrides")
    return (Job.from_contract(json.loads(environment[JOB_VARIABLE])),)
