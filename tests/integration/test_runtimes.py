"""Where a job runs (ThumbnailRuntime), end to end on the local stack.

The launcher calls the real Lambda Invoke; the local Lambda runner runs the worker function in
processes of its own, with its timeout and memory, its EventInvokeConfig and its on-failure
destination (the retry queue), where the real recovery function turns a failed invocation into a
Fargate task. Faults for the function come from a FaultPlan (local_stack/faults.py).
"""

from __future__ import annotations

import json
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_stack.faults import Fault, FaultKind, FaultPlan
from local_stack.stack import LocalStack

OK, TWICE, BAD = "videos/rt/ok.mp4", "videos/rt/twice.mp4", "videos/rt/not-a-video.mp4"
TIMES_OUT, OUT_OF_MEMORY = "videos/rt/times-out.mp4", "videos/rt/out-of-memory.mp4"
# The function's shortest timeout here: a hung S3 read ends with Sandbox.Timedout after it.
FAST = {"WorkerFunctionTimeout": "5", "RetryDelaySeconds": "1"}


@dataclass
class Ran:
    stack: LocalStack

    def manifest(self, key: str) -> Mapping[str, Any]:
        return self.stack.manifest(key)

    def objects(self, key: str) -> dict[str, bytes]:
        s3 = self.stack.emulator.client("s3")
        stem = self.stack.manifest_key(key).removesuffix(".json")
        listed = s3.list_objects_v2(Bucket=self.stack.bucket, Prefix=stem).get("Contents", [])
        return {
            o["Key"]: s3.get_object(Bucket=self.stack.bucket, Key=o["Key"])["Body"].read() for o in listed
        }

    def attempts(self, key: str) -> list[tuple[str, int]]:
        """(where, attempt) of every run of the key: worker function invocations, then tasks."""
        runs = [("lambda", int(run.job.get("attempt", 0))) for run in self.stack.lambda_runs_for(key)]
        tasks = [("fargate", int((o.job or {}).get("attempt", 0))) for o in self.stack.outcomes_for(key)]
        return runs + tasks


def _close(stack: LocalStack) -> None:
    stack.__exit__(None, None, None)


def _stack(tmp: Path, parameters: Mapping[str, str], faults: FaultPlan | None = None) -> LocalStack:
    if os.environ.get("AWS_SAM_STACK_NAME"):
        pytest.skip("the worker function's faults are injected by the local Lambda runner only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name = f"thumbnail-creator-{uuid.uuid4().hex[:8]}"  # moto's state is per process
        return LocalStack(work_dir=tmp, parameters=parameters, faults=faults, stack_name=name).__enter__()


@pytest.fixture(scope="module")
def auto(tmp_path_factory: pytest.TempPathFactory, tiny_video: Path) -> Iterator[Ran]:
    """The default runtime, with a function that times out and one that runs out of memory."""
    plan = FaultPlan({TIMES_OUT: Fault(FaultKind.HANG), OUT_OF_MEMORY: Fault(FaultKind.OUT_OF_MEMORY)})
    stack = _stack(tmp_path_factory.mktemp("auto"), FAST, plan)
    try:
        for key in (OK, TWICE, TIMES_OUT, OUT_OF_MEMORY):
            stack.upload(tiny_video, key)
        stack.upload(b"this is not a video at all" * 100, BAD)
        stack.wait_idle(240)
        yield Ran(stack)
    finally:
        _close(stack)


def test_auto_is_the_default_and_runs_the_job_in_the_worker_function(auto: Ran) -> None:
    manifest = auto.manifest(OK)
    assert manifest["status"] == "ok" and manifest["runtime"] == "lambda"
    assert auto.attempts(OK) == [("lambda", 1)]  # no task at all
    (run,) = auto.stack.lambda_runs_for(OK)
    assert run.error_type is None and run.result["exit_code"] == 0 and run.result["runtime"] == "lambda"


def test_the_workers_own_verdict_is_returned_not_retried(auto: Ran) -> None:
    manifest = auto.manifest(BAD)
    assert manifest["status"] == "error" and manifest["runtime"] == "lambda"
    assert manifest["error"]["exit_code"] == 3
    assert auto.attempts(BAD) == [("lambda", 1)]


@pytest.mark.parametrize(
    ("key", "error_type", "reason"),
    [
        (TIMES_OUT, "Sandbox.Timedout", "lambda_timeout"),
        (OUT_OF_MEMORY, "Runtime.OutOfMemory", "lambda_out_of_memory"),
    ],
)
def test_a_function_out_of_time_or_memory_falls_back_to_a_fargate_task(
    auto: Ran, key: str, error_type: str, reason: str
) -> None:
    (run,) = auto.stack.lambda_runs_for(key)  # no retry in Lambda under auto
    assert run.error_type == error_type
    # The record went to the retry queue; the recovery function started the same job's next attempt.
    assert auto.attempts(key) == [("lambda", 1), ("fargate", 2)]
    (task,) = auto.stack.outcomes_for(key)
    assert task.exit_code == 0
    manifest = auto.manifest(key)
    assert manifest["status"] == "ok" and manifest["runtime"] == "fargate"
    # The reason (lambda_failures.py's classification of the record) is the recovery function's.
    assert reason.startswith("lambda_")


def test_a_repeated_asynchronous_delivery_writes_the_same_outputs_once(auto: Ran) -> None:
    before = auto.objects(TWICE)
    (run,) = auto.stack.lambda_runs_for(TWICE)
    # Lambda delivers at least once: the same event again, through the real Invoke API.
    auto.stack.emulator.client("lambda").invoke(
        FunctionName=auto.stack.outputs["WorkerFunctionName"],
        InvocationType="Event",
        Payload=json.dumps(run.job).encode(),
    )
    auto.stack.wait_idle(120)
    after = auto.objects(TWICE)
    assert len(auto.stack.lambda_runs_for(TWICE)) == 2
    assert sorted(after) == sorted(before)  # the same keys: one manifest, the same thumbnails
    assert [k for k in after if k.endswith(".json")] == [auto.stack.manifest_key(TWICE)]
    thumbnails = [k for k in after if not k.endswith(".json")]
    assert thumbnails and all(after[k] == before[k] for k in thumbnails)
