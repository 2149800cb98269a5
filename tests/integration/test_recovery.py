"""Nothing lost after the launch: each fault a Fargate task can meet, injected on the local stack.

One stack for the module: every video below is uploaded at once, the stack settles, and each
test reads how its video ended. The local task runner injects the faults (local_stack/faults.py);
ECS's stopped-task events go through the template's own rule to the real recovery function.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_stack.faults import Fault, FaultKind, FaultPlan
from local_stack.stack import LocalStack
from local_stack.task_runner import TaskOutcome

ONCE = {kind: f"videos/faults/{kind.value}.mp4" for kind in FaultKind}
ALWAYS = {
    kind: f"videos/faults/always-{kind.value}.mp4" for kind in (FaultKind.OUT_OF_MEMORY, FaultKind.HANG)
}
CLEAN = "videos/faults/none.mp4"


@dataclass(frozen=True)
class Settled:
    stack: LocalStack

    def manifest(self, key: str) -> Mapping[str, Any]:
        return self.stack.manifest(key)

    def tasks(self, key: str) -> list[TaskOutcome]:
        """The key's tasks, by attempt."""
        return sorted(self.stack.outcomes_for(key), key=lambda o: int((o.job or {}).get("attempt", 0)))


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory, tiny_video: Path) -> Iterator[Settled]:
    if os.environ.get("AWS_SAM_STACK_NAME"):
        pytest.skip("faults are injected by the local task runner only")
    plan = FaultPlan(
        {
            **{key: Fault(kind) for kind, key in ONCE.items()},
            **{key: Fault(kind, persistent=True) for kind, key in ALWAYS.items()},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stack = LocalStack(
            work_dir=tmp_path_factory.mktemp("recovery-stack"),
            # Fargate faults, on tasks: the worker function's own are in test_runtimes.py. A task
            # per video (no job waits for a slot, so none is batched): batches are test_bursts.py's.
            parameters={
                "RetryDelaySeconds": "1",
                "MaxTaskMemory": "8192",
                "ThumbnailRuntime": "fargate",
                "MaxConcurrentTasks": "50",
            },
            faults=plan,
            max_parallel_tasks=4,
            stack_name="thumbnail-creator-recovery",  # moto keeps one state per process
        ).__enter__()
    try:
        for key in [*ONCE.values(), *ALWAYS.values(), CLEAN]:
            stack.upload(tiny_video, key)
        stack.wait_idle(timeout_s=400)
        yield Settled(stack)
    finally:
        stack.__exit__(None, None, None)


EXPECTED_FIRST_STOP = {
    FaultKind.CANNOT_PULL: (None, "TaskFailedToStart"),
    FaultKind.KILLED: (137, "EssentialContainerExited"),
    FaultKind.OUT_OF_MEMORY: (137, "EssentialContainerExited"),
    FaultKind.SPOT_INTERRUPTION: (143, "SpotInterruption"),
    FaultKind.TRANSIENT_EXIT_1: (1, "EssentialContainerExited"),
    FaultKind.HANG: (124, "EssentialContainerExited"),
}


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda kind: kind.value)
def test_each_fault_ends_in_a_thumbnail_after_one_retry(settled: Settled, kind: FaultKind) -> None:
    key = ONCE[kind]
    first, second = settled.tasks(key)
    assert (first.exit_code, first.stop_code) == EXPECTED_FIRST_STOP[kind]
    assert first.fault == kind.value and second.fault is None
    assert (second.job or {})["attempt"] == 2 and second.exit_code == 0
    manifest = settled.manifest(key)
    assert manifest["status"] == "ok" and manifest["input"]["attempt"] == 2
    assert manifest["thumbnails"]


def test_out_of_memory_is_retried_with_twice_the_memory(settled: Settled) -> None:
    first, second = settled.tasks(ONCE[FaultKind.OUT_OF_MEMORY])
    assert "OutOfMemoryError" in first.container_reason
    assert second.memory == 2 * first.memory


def test_a_fault_on_every_attempt_ends_in_an_error_manifest_that_says_why(settled: Settled) -> None:
    hung = settled.manifest(ALWAYS[FaultKind.HANG])
    assert hung["status"] == "error" and hung["error"]["reason"] == "deadline_exceeded"
    assert hung["attempts"] == 3 and "gave up after 3 attempt(s)" in hung["error"]["message"]
    assert len(settled.tasks(ALWAYS[FaultKind.HANG])) == 3
    starved = settled.manifest(ALWAYS[FaultKind.OUT_OF_MEMORY])
    assert starved["error"]["reason"] == "out_of_memory"
    failed = settled.stack.emulator.client("sqs").receive_message(
        QueueUrl=settled.stack.outputs["FailedJobsQueueUrl"], MaxNumberOfMessages=10, VisibilityTimeout=0
    )["Messages"]
    assert {json.loads(m["Body"])["job"]["key"] for m in failed} == set(ALWAYS.values())


def test_a_clean_upload_runs_once(settled: Settled) -> None:
    (only,) = settled.tasks(CLEAN)
    assert only.exit_code == 0 and settled.manifest(CLEAN)["input"]["attempt"] == 1


def test_a_repeated_stopped_event_starts_no_second_task(settled: Settled) -> None:
    """EventBridge delivers at least once: the same STOPPED event again asks for the same attempt 2."""
    key = ONCE[FaultKind.KILLED]
    first, _ = settled.tasks(key)
    settled.stack.emulator.client("events").put_events(Entries=[first.event])
    settled.stack.wait_idle(timeout_s=120)
    assert [int((o.job or {})["attempt"]) for o in settled.tasks(key)] == [1, 2]
    # The recovery function did act on both deliveries: each asked for attempt 2.
    decisions = [
        invocation.result
        for invocation in settled.stack.recovery_invocations()
        if invocation.event.get("detail", {}).get("taskArn") == first.task_arn
    ]
    assert decisions == [{"action": "retry", "kind": "killed", "attempt": 2}] * 2
