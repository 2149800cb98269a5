"""ECS's "ECS Task State Change" event for a task the local runner stopped, in AWS's shape.

ECS sends one to EventBridge for every change; the runner sends the one the recovery function's
rule matches (lastStatus STOPPED). Shape: ECS developer guide, "Amazon ECS task state change
events", as in src/events/task-stopped.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DETAIL_TYPE = "ECS Task State Change"
SOURCE = "aws.ecs"
OUT_OF_MEMORY_REASON = "OutOfMemoryError: Container killed due to memory usage"


@dataclass(frozen=True)
class ContainerStop:
    """How the essential container ended; exit_code None when it never started."""

    name: str
    exit_code: int | None
    reason: str = ""


@dataclass(frozen=True)
class TaskStop:
    container: ContainerStop
    stop_code: str  # EssentialContainerExited, TaskFailedToStart, SpotInterruption, UserInitiated
    stopped_reason: str


def task_size(task: Mapping[str, Any], definition: Mapping[str, Any]) -> tuple[int, int]:
    """(cpu units, memory MiB) the task runs with: the RunTask override, else the definition's."""
    overrides = task.get("overrides", {})
    return int(overrides.get("cpu") or definition.get("cpu") or 0), int(
        overrides.get("memory") or definition.get("memory") or 0
    )


def stopped_event(task: Mapping[str, Any], definition: Mapping[str, Any], stop: TaskStop) -> dict[str, Any]:
    """A PutEvents entry for this stop."""
    cpu, memory = task_size(task, definition)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    container: dict[str, Any] = {
        "name": stop.container.name,
        "lastStatus": "STOPPED",
        "taskArn": task["taskArn"],
    }
    if stop.container.exit_code is not None:
        container["exitCode"] = stop.container.exit_code
    if stop.container.reason:
        container["reason"] = stop.container.reason
    detail = {
        "clusterArn": task["clusterArn"],
        "taskArn": task["taskArn"],
        "taskDefinitionArn": task["taskDefinitionArn"],
        "group": task.get("group") or f"family:{definition.get('family', '')}",
        "startedBy": task.get("startedBy", ""),
        "launchType": task.get("launchType", "FARGATE"),
        "capacityProviderName": task.get("capacityProviderName") or "FARGATE",
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "cpu": str(cpu),
        "memory": str(memory),
        "overrides": task.get("overrides", {}),
        "containers": [container],
        "stopCode": stop.stop_code,
        "stoppedReason": stop.stopped_reason,
        "stoppedAt": now,
        "updatedAt": now,
        "version": 3,
    }
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [task["taskArn"]],
    }
