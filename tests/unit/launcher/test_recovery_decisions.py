"""How a stopped task is classified, and what the recovery function decides to do about it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from launcher_support import load_event
from thumbnail_launcher.recovery import MAX_DELAY_SECONDS, GiveUp, Retry, backoff_seconds, decide
from thumbnail_launcher.settings import RecoverySettings
from thumbnail_launcher.stops import NotAWorkerTaskError, StopKind, parse_stopped_task
from thumbnail_launcher.tasks import TaskSize

SETTINGS = RecoverySettings.from_env(
    {
        "CLUSTER_ARN": "arn:aws:ecs:us-east-1:123456789012:cluster/thumbnails",
        "TASK_DEFINITION_ARN": "arn:aws:ecs:us-east-1:123456789012:task-definition/thumbnail-worker:3",
        "CONTAINER_NAME": "worker",
        "SUBNET_IDS": "subnet-0a1b2c3d",
        "SECURITY_GROUP_IDS": "sg-0123456789abcdef0",
        "ASSIGN_PUBLIC_IP": "ENABLED",
        "USE_FARGATE_SPOT": "false",
        "VIDEO_PREFIX": "videos/",
        "VIDEO_SUFFIX": ".mp4",
        "BUCKET_NAME": "thumbnail-creator-123456789012-us-east-1",
        "THUMBNAIL_RUNTIME": "auto",
        "WORKER_FUNCTION_NAME": "thumbnail-creator-WorkerFunction-0A1B2C3D4E5F",
        "PENDING_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pending",
        "JOB_LEDGER_TABLE": "thumbnail-creator-JobLedger-0A1B2C3D",
        "MAX_CONCURRENT_TASKS": "4",
        "MAX_JOBS_PER_TASK": "10",
        "WORKER_DEADLINE_SECONDS": "900",
        "POWERTOOLS_SERVICE_NAME": "thumbnail-recovery",
        "POWERTOOLS_METRICS_NAMESPACE": "ThumbnailCreator",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "OUTPUT_PREFIX": "thumbnails/",
        "MAX_ATTEMPTS": "3",
        "MAX_TASK_MEMORY": "8192",
        "RETRY_DELAY_SECONDS": "30",
        "RETRY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/retries",
        "FAILED_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/failed",
    }
)


def stopped(
    *,
    exit_code: int | None = 0,
    reason: str = "",
    stop_code: str = "EssentialContainerExited",
    attempt: int = 1,
    cpu: int = 1024,
    memory: int = 2048,
) -> dict[str, Any]:
    """The sample event's detail (src/events/task-stopped.json) with these values."""
    detail: dict[str, Any] = copy.deepcopy(load_event("task-stopped.json")["detail"])
    (container,) = detail["containers"]
    container.pop("exitCode", None)
    container.pop("reason", None)
    if exit_code is not None:
        container["exitCode"] = exit_code
    if reason:
        container["reason"] = reason
    detail.update(stopCode=stop_code, cpu=str(cpu), memory=str(memory))
    (variable,) = detail["overrides"]["containerOverrides"][0]["environment"]
    variable["value"] = json.dumps({**json.loads(variable["value"]), "attempt": attempt})
    return detail


OOM = "OutOfMemoryError: Container killed due to memory usage"


@pytest.mark.parametrize(
    ("detail", "kind", "retryable"),
    [
        (stopped(exit_code=0), StopKind.SUCCEEDED, False),
        (stopped(exit_code=2), StopKind.REPORTED, False),
        (stopped(exit_code=3), StopKind.REPORTED, False),
        (stopped(exit_code=1), StopKind.WORKER_ERROR, True),
        (stopped(exit_code=137, reason=OOM), StopKind.OUT_OF_MEMORY, True),
        (stopped(exit_code=137), StopKind.KILLED, True),
        (stopped(exit_code=143, stop_code="UserInitiated"), StopKind.TERMINATED, True),
        (stopped(exit_code=143, stop_code="SpotInterruption"), StopKind.SPOT_INTERRUPTION, True),
        (stopped(exit_code=124), StopKind.DEADLINE, True),
        (
            stopped(exit_code=None, reason="CannotPullContainerError: pull image manifest has been retried"),
            StopKind.FAILED_TO_START,
            True,
        ),
        (
            stopped(exit_code=None, stop_code="TaskFailedToStart", reason="ResourceInitializationError"),
            StopKind.FAILED_TO_START,
            True,
        ),
        (stopped(exit_code=42), StopKind.UNEXPECTED_EXIT, False),
    ],
)
def test_each_stop_is_classified(detail: dict[str, Any], kind: StopKind, retryable: bool) -> None:
    task = parse_stopped_task(detail, "worker")
    assert (task.kind, task.retryable) == (kind, retryable)
    assert task.job.key == "videos/big-buck-bunny.mp4"


def test_the_sample_event_is_an_out_of_memory_kill_of_attempt_one() -> None:
    task = parse_stopped_task(load_event("task-stopped.json")["detail"], "worker")
    assert task.kind is StopKind.OUT_OF_MEMORY and task.job.attempt == 1
    assert (task.cpu, task.memory) == (1024, 2048)


def test_a_task_without_a_job_is_not_a_worker_task() -> None:
    detail = stopped()
    detail["overrides"] = {"containerOverrides": [{"name": "worker"}]}
    with pytest.raises(NotAWorkerTaskError, match="THUMBNAIL_JOB"):
        parse_stopped_task(detail, "worker")
    with pytest.raises(NotAWorkerTaskError, match="no container named"):
        parse_stopped_task(stopped(), "other")


@pytest.mark.parametrize("exit_code", [0, 2, 3])
def test_done_and_reported_stops_need_nothing(exit_code: int) -> None:
    assert decide(parse_stopped_task(stopped(exit_code=exit_code), "worker"), SETTINGS) is None


def test_a_transient_failure_is_retried_as_the_next_attempt_after_the_backoff() -> None:
    decision = decide(parse_stopped_task(stopped(exit_code=1), "worker"), SETTINGS)
    assert isinstance(decision, Retry)
    assert decision.job.attempt == 2 and decision.delay_seconds == 30
    assert decision.size is None and decision.on_demand is False
    assert decision.reason.startswith("worker_error: exit code 1")


def test_out_of_memory_doubles_the_memory_and_takes_the_cpu_fargate_needs() -> None:
    decision = decide(parse_stopped_task(stopped(exit_code=137, reason=OOM), "worker"), SETTINGS)
    assert isinstance(decision, Retry) and decision.size == TaskSize(1024, 4096)
    small = stopped(exit_code=137, reason=OOM, cpu=512, memory=4096, attempt=2)
    decision = decide(parse_stopped_task(small, "worker"), SETTINGS)
    assert isinstance(decision, Retry) and decision.size == TaskSize(1024, 8192)


def test_out_of_memory_at_the_cap_is_given_up_not_retried_bigger() -> None:
    decision = decide(parse_stopped_task(stopped(exit_code=137, reason=OOM, memory=8192), "worker"), SETTINGS)
    assert isinstance(decision, GiveUp) and decision.reason == "out_of_memory"
    assert "8192 MiB" in decision.message


def test_a_spot_interruption_is_retried_on_demand() -> None:
    detail = stopped(exit_code=143, stop_code="SpotInterruption")
    decision = decide(parse_stopped_task(detail, "worker"), SETTINGS)
    assert isinstance(decision, Retry) and decision.on_demand is True


def test_the_last_attempt_gives_up_and_says_how_many() -> None:
    decision = decide(parse_stopped_task(stopped(exit_code=1, attempt=3), "worker"), SETTINGS)
    assert isinstance(decision, GiveUp) and decision.reason == "worker_error"
    assert "after 3 attempt(s)" in decision.message


def test_an_unexpected_exit_code_is_given_up_at_once() -> None:
    decision = decide(parse_stopped_task(stopped(exit_code=42), "worker"), SETTINGS)
    assert isinstance(decision, GiveUp) and decision.reason == "unexpected_exit"


def test_a_retry_after_an_out_of_memory_retry_keeps_the_larger_size() -> None:
    decision = decide(parse_stopped_task(stopped(exit_code=1, attempt=2, memory=4096), "worker"), SETTINGS)
    assert isinstance(decision, Retry) and decision.size == TaskSize(1024, 4096)


def test_backoff_doubles_within_sqs_delay_limit() -> None:
    assert [backoff_seconds(attempt, 30) for attempt in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_seconds(10, 30) == MAX_DELAY_SECONDS
    assert backoff_seconds(1, 0) == 0


@pytest.mark.parametrize(
    ("memory", "at_least_cpu", "size"),
    [
        (4096, 1024, TaskSize(1024, 4096)),
        (16384, 1024, TaskSize(2048, 16384)),
        (1024, 256, TaskSize(256, 1024)),
    ],
)
def test_task_sizes_are_valid_fargate_pairs(memory: int, at_least_cpu: int, size: TaskSize) -> None:
    assert TaskSize.for_memory(memory, at_least_cpu) == size
