"""The local task runner's reading of a task's jobs (THUMBNAIL_JOB or THUMBNAIL_JOBS) and its fault plan."""

from __future__ import annotations

import json

from local_stack.faults import Fault, FaultKind, FaultPlan
from local_stack.task_runner import task_jobs

ONE = {"bucket": "b", "key": "videos/one.mp4", "attempt": 1}
TWO = {"bucket": "b", "key": "videos/two.mp4", "attempt": 1}


def test_a_task_carries_one_job_or_a_batch() -> None:
    assert task_jobs({"THUMBNAIL_JOB": json.dumps(ONE)}) == (ONE,)
    assert task_jobs({"THUMBNAIL_JOBS": json.dumps([ONE, TWO])}) == (ONE, TWO)
    assert task_jobs({}) == () and task_jobs({"THUMBNAIL_JOBS": "not json"}) == ()
    assert task_jobs({"THUMBNAIL_JOBS": json.dumps([ONE, 7])}) == (ONE,)


def test_a_fault_planned_for_any_job_of_a_batch_hits_the_task_on_that_jobs_attempt() -> None:
    plan = FaultPlan({TWO["key"]: Fault(FaultKind.KILLED)})
    assert plan.for_jobs([ONE, TWO]) is FaultKind.KILLED
    assert plan.for_jobs([ONE]) is None
    assert plan.for_jobs([ONE, {**TWO, "attempt": 2}]) is None  # a first-attempt fault only
    persistent = FaultPlan(
        {ONE["key"]: Fault(FaultKind.HANG, persistent=True), TWO["key"]: Fault(FaultKind.KILLED)}
    )
    assert persistent.for_jobs([{**ONE, "attempt": 3}, TWO]) is FaultKind.HANG  # the first job's, in order
