"""What to do about a stopped worker task: nothing, retry it (how, and after how long), or give up.

Pure decisions, no I/O: the recovery handler carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from thumbnail_launcher.jobs import Job
from thumbnail_launcher.settings import RecoverySettings
from thumbnail_launcher.stops import StopKind, StoppedTask
from thumbnail_launcher.tasks import TaskSize

# SQS delays a message by at most 15 minutes (SQS developer guide, "Amazon SQS delay queues").
MAX_DELAY_SECONDS = 900


@dataclass(frozen=True)
class Retry:
    """Start `job` (the next attempt) after `delay_seconds`, with this size and capacity."""

    job: Job
    reason: str
    delay_seconds: int
    size: TaskSize | None = None
    on_demand: bool = False
    # Run in a task of its own even when it waited for capacity: a retried video is not batched
    # with others (README "Quotas and bursts").
    alone: bool = False


@dataclass(frozen=True)
class GiveUp:
    """No more attempts: the error manifest and the failed-jobs queue say why."""

    reason: str
    message: str


Decision = Retry | GiveUp | None  # None: nothing to do (done, or the worker reported it)


def decide(task: StoppedTask, settings: RecoverySettings) -> Decision:
    kind = task.kind
    if not task.retryable:
        if kind in {StopKind.SUCCEEDED, StopKind.REPORTED}:
            return None
        return GiveUp(kind.value, f"the worker exited with code {task.exit_code}, which is not retried")
    if task.job.attempt >= settings.max_attempts:
        return GiveUp(kind.value, f"{_what_happened(task)}; gave up after {task.job.attempt} attempt(s)")
    size = None
    if kind is StopKind.OUT_OF_MEMORY:
        if task.memory >= settings.max_task_memory:
            return GiveUp(
                kind.value,
                f"{_what_happened(task)} at {task.memory} MiB, the most MaxTaskMemory allows",
            )
        size = TaskSize.for_memory(min(task.memory * 2, settings.max_task_memory), task.cpu)
    elif task.memory and task.job.attempt > 1:
        # Keep a size an earlier out-of-memory retry chose.
        size = TaskSize(task.cpu, task.memory)
    return Retry(
        job=task.job.next_attempt(),
        reason=f"{kind.value}: {_what_happened(task)}",
        delay_seconds=backoff_seconds(task.job.attempt, settings.retry_delay_seconds),
        size=size,
        on_demand=kind is StopKind.SPOT_INTERRUPTION,
    )


def backoff_seconds(failed_attempt: int, base: int) -> int:
    """base, 2*base, 4*base... after attempts 1, 2, 3..., within SQS's 15-minute delay limit."""
    return int(min(base * 2 ** max(failed_attempt - 1, 0), MAX_DELAY_SECONDS))


def _what_happened(task: StoppedTask) -> str:
    parts = [f"exit code {task.exit_code}" if task.exit_code is not None else "no exit code"]
    parts += [text for text in (task.stop_code, task.stopped_reason, task.container_reason) if text]
    return ", ".join(parts)
