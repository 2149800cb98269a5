"""Where a job runs, continued: one stack per test, each after test_runtimes.py's (one emulator at a time).

A job too heavy for the worker function (a hand-off to Fargate), `fargate` (every job in a task)
and `lambda` (Lambda's own retries, then given up without Fargate).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from local_stack.faults import Fault, FaultKind, FaultPlan
from tests.integration.test_runtimes import FAST, OK, TIMES_OUT, Ran, _close, _stack


def test_a_job_too_heavy_for_the_function_is_handed_to_fargate(
    tmp_path_factory: pytest.TempPathFactory, tiny_video: Path
) -> None:
    # The tiny video lasts 2 s: above a 1-second limit, it is "too long" for the function.
    stack = _stack(tmp_path_factory.mktemp("heavy"), {**FAST, "LambdaMaxVideoSeconds": "1"})
    try:
        stack.upload(tiny_video, OK)
        stack.wait_idle(180)
        ran = Ran(stack)
        (run,) = stack.lambda_runs_for(OK)
        assert run.error_type is None and "duration" in run.result["handed_off"]
        assert ran.attempts(OK) == [("lambda", 1), ("fargate", 2)]
        manifest = ran.manifest(OK)
        assert manifest["status"] == "ok" and manifest["runtime"] == "fargate"
    finally:
        _close(stack)


def test_fargate_runs_every_job_in_a_task(tmp_path_factory: pytest.TempPathFactory, tiny_video: Path) -> None:
    stack = _stack(tmp_path_factory.mktemp("fargate"), {"ThumbnailRuntime": "fargate"})
    try:
        stack.upload(tiny_video, OK)
        stack.wait_idle(180)
        ran = Ran(stack)
        assert ran.attempts(OK) == [("fargate", 1)]
        assert ran.manifest(OK)["runtime"] == "fargate"
    finally:
        _close(stack)


def test_lambda_retries_in_lambda_then_gives_up_without_fargate(
    tmp_path_factory: pytest.TempPathFactory, tiny_video: Path
) -> None:
    plan = FaultPlan({TIMES_OUT: Fault(FaultKind.HANG)})
    stack = _stack(tmp_path_factory.mktemp("lambda"), {**FAST, "ThumbnailRuntime": "lambda"}, plan)
    try:
        stack.upload(tiny_video, OK)
        stack.upload(tiny_video, TIMES_OUT)
        stack.wait_idle(240)
        ran = Ran(stack)
        assert ran.manifest(OK)["runtime"] == "lambda"
        # EventInvokeConfig under `lambda`: two retries in Lambda, then the record; no task.
        assert ran.attempts(TIMES_OUT) == [("lambda", 1)] * 3
        manifest = ran.manifest(TIMES_OUT)
        assert manifest["status"] == "error" and manifest["error"]["reason"] == "lambda_timeout"
        assert manifest["written_by"] == "recovery"
    finally:
        _close(stack)
