"""TaskLauncher against moto's ECS: the bounded retry of RunTask `failures` and the Spot fallback.

moto's RunTask always answers `failures: []`, so the failures ECS reports are delivered on the wire
(see RunTaskWire); the waits between attempts are recorded instead of slept.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event

from launcher_support import EcsWorld, Reply, RunTaskWire, load_event
from thumbnail_launcher import clients
from thumbnail_launcher.jobs import Job, parse_event
from thumbnail_launcher.settings import Settings
from thumbnail_launcher.tasks import Capacity, LaunchError, TaskLauncher

SPOT_SHORTAGE = (
    "Capacity is unavailable at this time. Please try again later or in a different availability zone"
)


def fail(reason: str, times: int, *, only_spot: bool = False) -> Any:
    """A responder answering `times` RunTask requests with a `failures` entry, then letting them through."""
    answered: list[dict[str, Any]] = []

    def responder(request: dict[str, Any]) -> Reply | None:
        if only_spot and "capacityProviderStrategy" not in request:
            return None
        if len(answered) >= times:
            return None
        answered.append(request)
        return 200, {"tasks": [], "failures": [{"arn": request["cluster"], "reason": reason}]}

    return responder


@pytest.fixture
def job() -> Job:
    return parse_event(S3Event(load_event("put.json")), video_prefix="videos/", video_suffix=".mp4").jobs[0]


@pytest.fixture
def make_launcher(ecs_world: EcsWorld, wire: RunTaskWire) -> Any:
    waits: list[float] = []

    def make(*, spot: bool = False) -> TaskLauncher:
        settings = Settings.from_env(ecs_world.environment(USE_FARGATE_SPOT=str(spot).lower()))
        return TaskLauncher(settings, clients.ecs_client(), retry_delays=(0.5, 1.5), sleep=waits.append)

    make.waits = waits  # type: ignore[attr-defined]
    return make


def test_retryable_failure_is_retried_with_the_same_token(
    job: Job, make_launcher: Any, wire: RunTaskWire
) -> None:
    wire.reply(fail("RESOURCE:ENI", times=1))
    task = make_launcher().launch(job)
    assert (task.attempts, task.capacity) == (2, Capacity.ON_DEMAND)
    assert make_launcher.waits == [0.5]
    first, second = wire.requests
    assert first == second


def test_retryable_failure_gives_up_after_the_bounded_attempts(
    job: Job, make_launcher: Any, wire: RunTaskWire
) -> None:
    wire.reply(fail(SPOT_SHORTAGE, times=99))
    with pytest.raises(LaunchError, match="still failing after 3 attempts: Capacity is unavailable"):
        make_launcher().launch(job)
    assert len(wire.requests) == 3
    assert make_launcher.waits == [0.5, 1.5]


def test_permanent_failure_is_not_retried(job: Job, make_launcher: Any, wire: RunTaskWire) -> None:
    wire.reply(fail("MISSING", times=99))
    with pytest.raises(LaunchError, match="RunTask on FARGATE failed: MISSING"):
        make_launcher().launch(job)
    assert len(wire.requests) == 1
    assert make_launcher.waits == []


def test_spot_capacity_shortage_falls_back_at_once(job: Job, make_launcher: Any, wire: RunTaskWire) -> None:
    wire.reply(fail(SPOT_SHORTAGE, times=99, only_spot=True))
    task = make_launcher(spot=True).launch(job)
    assert task.capacity is Capacity.ON_DEMAND and task.fell_back_to_on_demand
    assert [("launchType" in r, "capacityProviderStrategy" in r) for r in wire.requests] == [
        (False, True),
        (True, False),
    ]
    assert make_launcher.waits == []


def test_spot_other_retryable_failure_is_retried_on_spot_then_falls_back(
    job: Job, make_launcher: Any, wire: RunTaskWire
) -> None:
    wire.reply(fail("RESOURCE:ENI", times=3, only_spot=True))
    task = make_launcher(spot=True).launch(job)
    assert task.fell_back_to_on_demand
    assert len(wire.requests) == 4
    assert make_launcher.waits == [0.5, 1.5]


def test_spot_success_needs_no_fallback(job: Job, make_launcher: Any, wire: RunTaskWire) -> None:
    wire.reply(fail("RESOURCE:ENI", times=1, only_spot=True))
    task = make_launcher(spot=True).launch(job)
    assert (task.capacity, task.attempts, task.fell_back_to_on_demand) == (Capacity.SPOT, 2, False)


def test_conflict_without_task_arns_is_a_failure(job: Job, make_launcher: Any, wire: RunTaskWire) -> None:
    wire.reply(lambda _: (400, {"__type": "ConflictException", "message": "token in use"}))
    with pytest.raises(LaunchError, match="ConflictException: token in use"):
        make_launcher().launch(job)


def test_answer_with_neither_task_nor_failure_is_a_failure(
    job: Job, make_launcher: Any, wire: RunTaskWire
) -> None:
    wire.reply(lambda _: (200, {"tasks": [], "failures": []}))
    with pytest.raises(LaunchError, match="started no task and reported no failure"):
        make_launcher().launch(dataclasses.replace(job))
