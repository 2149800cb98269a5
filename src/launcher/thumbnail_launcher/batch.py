"""Launch every job of one event: each record is attempted, logged and counted, whatever the others do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from thumbnail_launcher.dispatch import InvokedFunction, Started
from thumbnail_launcher.jobs import Job, ParsedEvent
from thumbnail_launcher.starter import Deferred
from thumbnail_launcher.tasks import LaunchedTask, LaunchError


class Launcher(Protocol):
    """starter.JobStarter (a task per job, or the pending-jobs queue) or dispatch.JobDispatcher (the
    worker function first)."""

    def launch(self, job: Job) -> Started: ...


class LaunchFailuresError(RuntimeError):
    """Raised after the whole event was attempted, so that Lambda retries it and then keeps it in the DLQ.

    The retry starts no second task for the records that did launch (the job ledger and their
    RunTask client token). A quota or capacity refusal is no failure: that job waits in the
    pending-jobs queue.
    """


@dataclass
class BatchOutcome:
    started: list[tuple[Job, LaunchedTask]] = field(default_factory=list)
    already_started: list[tuple[Job, LaunchedTask]] = field(default_factory=list)
    # Jobs queued for the worker function (THUMBNAIL_RUNTIME auto or lambda).
    invoked: list[tuple[Job, InvokedFunction]] = field(default_factory=list)
    # Jobs put in the pending-jobs queue (quota, capacity, MaxConcurrentTasks, others waiting).
    queued: list[tuple[Job, Deferred]] = field(default_factory=list)
    # Deliveries of jobs already waiting or started (a repeated event): nothing added.
    repeats: int = 0
    skipped: int = 0
    other_bucket: int = 0
    # (what failed: a key or a record index, why)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def records_skipped(self) -> int:
        """Records that needed no new task: filtered out, or a repeat of an event already launched."""
        return self.skipped + len(self.already_started) + self.repeats

    def summary(self) -> dict[str, Any]:
        return {
            "tasks_started": len(self.started),
            "repeated_events": len(self.already_started) + self.repeats,
            "jobs_queued": len(self.queued),
            "records_skipped": self.records_skipped,
            "records_from_other_buckets": self.other_bucket,
            "launch_failures": len(self.failed),
            "task_arns": [task.task_arn for _, task in self.started + self.already_started],
            **({"lambda_jobs_started": len(self.invoked)} if self.invoked else {}),
        }

    def raise_if_failed(self) -> None:
        if self.failed:
            listed = "; ".join(f"{what}: {why}" for what, why in self.failed)
            raise LaunchFailuresError(f"{len(self.failed)} record(s) could not be launched: {listed}")


def launch_all(parsed: ParsedEvent, launcher: Launcher, logger: Logger) -> BatchOutcome:
    outcome = BatchOutcome(
        skipped=len(parsed.skipped), other_bucket=sum(record.other_bucket for record in parsed.skipped)
    )
    for skipped in parsed.skipped:
        with logger.append_context_keys(correlation_id=skipped.request_id, s3_key=skipped.key):
            logger.info("Record skipped", extra={"reason": skipped.reason})
    for invalid in parsed.invalid:
        what = f"record #{invalid.index}"
        logger.error("Record cannot be read", extra={"record_index": invalid.index, "reason": invalid.reason})
        outcome.failed.append((what, invalid.reason))
    for job in parsed.jobs:
        # The S3 request id is the correlation id that follows the video to its manifest.
        with logger.append_context_keys(correlation_id=job.request_id, s3_key=job.key):
            _launch_one(job, launcher, logger, outcome)
    return outcome


def _launch_one(job: Job, launcher: Launcher, logger: Logger, outcome: BatchOutcome) -> None:
    try:
        task = launcher.launch(job)
    except LaunchError as error:
        logger.error("Task not started", extra={"reason": error.reason})
        outcome.failed.append((job.key, error.reason))
        return
    except Exception as error:  # an unexpected error must not hide the records after this one
        logger.exception("Task not started: unexpected error")
        outcome.failed.append((job.key, f"{type(error).__name__}: {error}"))
        return
    if isinstance(task, Deferred):
        if task.repeat:
            logger.info("Job already waiting or started (repeated event)", extra={"reason": task.reason})
            outcome.repeats += 1
        else:
            logger.info("Job queued until capacity frees", extra={"reason": task.reason})
            outcome.queued.append((job, task))
        return
    if isinstance(task, InvokedFunction):
        logger.info(
            "Job sent to the worker function",
            extra={"runtime": "lambda", "function": task.function_name, "invoke_request_id": task.request_id},
        )
        outcome.invoked.append((job, task))
        return
    details = {
        "task_arn": task.task_arn,
        "capacity": task.capacity.value,
        "attempts": task.attempts,
        "fell_back_to_on_demand": task.fell_back_to_on_demand,
        "runtime": "fargate",
    }
    if task.already_started:
        logger.info("Task already started for this upload (repeated event)", extra=details)
        outcome.already_started.append((job, task))
        return
    if task.fell_back_to_on_demand:
        logger.warning("Fargate Spot had no capacity: task started on demand", extra=details)
    else:
        logger.info("Task started", extra=details)
    outcome.started.append((job, task))
