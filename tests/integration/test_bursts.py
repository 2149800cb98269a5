"""Bursts beyond the account's quotas, on the local stack: RunTask refused as ECS refuses it at the
Fargate vCPU quota, jobs waiting in the pending-jobs queue, batches of them per task, each job of a
batch accounted for alone, and nothing dead-lettered or lost (README "Quotas and bursts")."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack import moto_hooks
from local_stack.stack import LocalStack

# Fargate tasks, quick backoffs; a 1-vCPU worker task (the template's default size).
PARAMETERS = {"ThumbnailRuntime": "fargate", "RetryDelaySeconds": "1"}


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    stacks: list[LocalStack] = []

    def start(*, vcpu_quota: float, **parameters: str) -> LocalStack:
        stack = LocalStack(
            parameters={**PARAMETERS, **parameters},
            work_dir=tmp_path / f"stack-{len(stacks)}",
            max_parallel_tasks=4,
            vcpu_quota=vcpu_quota,
            stack_name=f"bursts-{uuid.uuid4().hex[:8]}",
        ).__enter__()
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.__exit__(None, None, None)


def queued(stack: LocalStack, output: str) -> int:
    attributes = stack.emulator.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs[output],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def runs_of(stack: LocalStack, key: str) -> list[tuple[int, int]]:
    """(attempt, jobs in that task) for every task that carried `key`."""
    return sorted(
        (int(job.get("attempt", 1)), len(outcome.jobs))
        for outcome in stack.runner.outcomes.values()
        for job in outcome.jobs
        if job.get("key") == key
    )


def test_a_burst_beyond_the_quota_is_delayed_in_batches_never_dead_lettered(
    make_stack: Callable[..., LocalStack], tiny_video: Path
) -> None:
    # MaxConcurrentTasks above the quota: ECS's own refusals are met too, not only the stack's limit.
    stack = make_stack(vcpu_quota=2, MaxConcurrentTasks="4", MaxJobsPerTask="5")
    keys = [f"videos/burst/{index:02d}.mp4" for index in range(16)]
    for key in keys:
        stack.upload(tiny_video, key)
    stack.wait_idle(240)

    for key in keys:
        assert stack.manifest(key)["status"] == "ok", key
        assert [attempt for attempt, _ in runs_of(stack, key)] == [1], key  # one task, the first attempt
    assert queued(stack, "DeadLetterQueueUrl") == 0 and stack.pending_jobs() == 0
    assert stack.runner.max_concurrent_tasks() <= 2
    outcomes = list(stack.runner.outcomes.values())
    assert len(outcomes) < len(keys)
    assert max(len(outcome.jobs) for outcome in outcomes) > 1  # batches ran
    assert all(len(outcome.jobs) <= 5 for outcome in outcomes)
    launched = [i.result for i in stack.pump.record.invocations if i.error is None]
    assert sum(result["jobs_queued"] for result in launched) > 0
    assert all(i.error is None for i in stack.pump.record.invocations)


def test_a_batch_with_one_failing_video_retries_only_that_video(
    make_stack: Callable[..., LocalStack], tiny_video: Path
) -> None:
    """An archived (GLACIER) object: the worker cannot read it, exits 1 for it alone and writes its
    error manifest; the batch goes on. The recovery retries that video alone, attempt after attempt,
    while its batch mates, done once, are not redone."""
    stack = make_stack(vcpu_quota=1, MaxConcurrentTasks="1", MaxJobsPerTask="10")
    keys = [f"videos/batch/{index}.mp4" for index in range(6)]
    archived = keys[3]
    s3 = stack.emulator.client("s3")
    for key in keys:
        body = tiny_video.read_bytes()
        storage = {"StorageClass": "GLACIER"} if key == archived else {}
        s3.put_object(Bucket=stack.bucket, Key=key, Body=body, **storage)
    stack.wait_idle(240)

    (batch,) = [o for o in stack.runner.outcomes.values() if archived in o.keys and o.job["attempt"] == 1]
    assert len(batch.jobs) > 1, "the archived video should have waited and run in a batch"
    assert batch.exit_code == 1
    for key in keys:
        if key == archived:
            continue
        assert stack.manifest(key)["status"] == "ok"
        assert [attempt for attempt, _ in runs_of(stack, key)] == [1], key  # one task, never redone
    # The failing video alone from attempt 2 on, up to MaxAttempts (3), then given up.
    assert runs_of(stack, archived) == [(1, len(batch.jobs)), (2, 1), (3, 1)]
    manifest = stack.manifest(archived)
    assert manifest["status"] == "error"
    assert manifest["error"]["reason"] == "source_unreadable"
    assert queued(stack, "FailedJobsQueueUrl") == 1


def test_a_waiting_job_is_not_queued_twice_and_starts_once_capacity_returns(
    make_stack: Callable[..., LocalStack], tiny_video: Path
) -> None:
    """No vCPU at all (every RunTask refused as ECS refuses it): the job waits; its S3 event
    delivered again adds nothing; when the quota is raised the queue drains (the drain schedule)."""
    stack = make_stack(vcpu_quota=0)
    key = "videos/waiting.mp4"
    stack.upload(tiny_video, key)

    def queued_by_the_launcher() -> list[Any]:
        return [i for i in stack.pump.record.invocations if i.result and i.result.get("jobs_queued")]

    until(lambda: len(queued_by_the_launcher()) == 1 and stack.pending_jobs() == 1, "the job to wait")
    (first,) = queued_by_the_launcher()
    assert (first.result["jobs_queued"], first.result["launch_failures"]) == (1, 0)

    again = stack.pump.invoke(first.event)  # S3 delivers at least once
    assert again.error is None and again.result is not None
    assert (again.result["jobs_queued"], again.result["repeated_events"], again.result["tasks_started"]) == (
        0,
        1,
        0,
    )
    time.sleep(3)  # a drain or two run meanwhile, and are refused: the job keeps waiting
    assert stack.pending_jobs() == 1 and stack.runner.started_count() == 0

    moto_hooks.set_vcpu_quota(stack.emulator.endpoint_url, 4)  # the quota increase came through
    stack.wait_idle(120)
    assert stack.manifest(key)["status"] == "ok"
    assert runs_of(stack, key) == [(1, 1)]
    assert stack.pending_jobs() == 0 and queued(stack, "DeadLetterQueueUrl") == 0


def test_the_pending_queue_drains_in_batches_after_capacity_returns(
    make_stack: Callable[..., LocalStack], tiny_video: Path
) -> None:
    stack = make_stack(vcpu_quota=0, MaxJobsPerTask="4")
    keys = [f"videos/later/{index}.mp4" for index in range(10)]
    for key in keys:
        stack.upload(tiny_video, key)
    until(lambda: stack.pending_jobs() == len(keys), "every job to wait")
    assert stack.runner.started_count() == 0

    moto_hooks.set_vcpu_quota(stack.emulator.endpoint_url, 2)
    stack.wait_idle(180)
    for key in keys:
        assert stack.manifest(key)["status"] == "ok"
        assert len(runs_of(stack, key)) == 1
    sizes = sorted(len(outcome.jobs) for outcome in stack.runner.outcomes.values())
    assert sum(sizes) == len(keys) and max(sizes) == 4 and len(sizes) == 3  # 4 + 4 + 2
    assert stack.runner.max_concurrent_tasks() <= 2
    drains: list[dict[str, Any]] = [
        i.result
        for i in stack.recovery_invocations()
        if i.event == {"drain": {}} and i.result and i.result.get("tasks_started")
    ]
    assert drains, "the schedule's drain started the waiting jobs"
