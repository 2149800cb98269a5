"""One ECS Fargate task per job: the RunTask request, its idempotency token, and what to do when it fails."""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from botocore.exceptions import ClientError

from thumbnail_launcher.clients import WORST_CALL_SECONDS
from thumbnail_launcher.jobs import Job
from thumbnail_launcher.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import FailureTypeDef, RunTaskRequestTypeDef, TagTypeDef, TaskTypeDef

JOB_VARIABLE = "THUMBNAIL_JOB"
# Constant, so that `list-tasks --started-by thumbnail-launcher` finds every thumbnail task
# (startedBy: at most 36 characters of letters, digits, '-', '/' and '_').
STARTED_BY = "thumbnail-launcher"
TAG_PREFIX = "thumbnail-creator:"
TAG_VALUE_MAX = 256
# Between attempts after RunTask answers with retryable `failures` (throttling and 5xx are
# botocore's job: see clients.py).
FAILURE_RETRY_DELAYS = (1.0, 2.0)
# Clock skew allowed between Lambda and ECS when telling a repeated RunTask from a new one.
REPEAT_TOLERANCE = timedelta(seconds=2)


class Capacity(StrEnum):
    SPOT = "FARGATE_SPOT"
    ON_DEMAND = "FARGATE"


class LaunchError(Exception):
    """A job whose task could not be started; `reason` says why (a RunTask failure or an API error)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class LaunchedTask:
    task_arn: str
    capacity: Capacity
    attempts: int
    fell_back_to_on_demand: bool = False
    # True when ECS answered that this job's token already started a task (a repeated event).
    already_started: bool = False


def client_token(job: Job, capacity: Capacity) -> str:
    """Identical for every delivery of one S3 write, distinct for another write of the same key.

    ECS starts no second task for a token it has seen in the last 24 h with the same parameters.
    The capacity is part of it because RunTask rejects a known token with other parameters
    (ConflictException), and the on-demand fallback differs from the Spot request.
    """
    # The sequencer orders writes to one key; moto's events lack it, the ETag then stands in.
    # The attempt and the origin make each retry, sweep and replay a task of its own, while a
    # repeated STOPPED event for one attempt asks for the same next attempt (ECS starts it once).
    write = job.sequencer or f"etag:{job.etag}"
    identity = "\0".join(
        (job.bucket, job.key, job.version_id or "", write, job.origin, str(job.attempt), capacity.value)
    )
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()  # 64 characters, the maximum


def tag_value(text: str) -> str:
    """`text` as an ECS tag value: allowed characters only, at most 256, never the reserved 'aws:'."""
    cleaned = "".join(char if _allowed_in_tag(char) else "_" for char in text)
    if len(cleaned) > TAG_VALUE_MAX:
        # Keep both ends: the folder and the file name.
        half = (TAG_VALUE_MAX - 3) // 2
        cleaned = f"{cleaned[:half]}...{cleaned[-(TAG_VALUE_MAX - 3 - half) :]}"
    if cleaned.lower().startswith("aws:"):
        cleaned = "_" + cleaned[1:]
    return cleaned


def _allowed_in_tag(char: str) -> bool:
    # ECS tag pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]
    return unicodedata.category(char)[0] in "LZN" or char in "_.:/=+-@"


def task_tags(job: Job) -> list[TagTypeDef]:
    tags: list[TagTypeDef] = [
        {"key": f"{TAG_PREFIX}bucket", "value": tag_value(job.bucket)},
        {"key": f"{TAG_PREFIX}key", "value": tag_value(job.key)},
    ]
    if job.request_id:
        tags.append({"key": f"{TAG_PREFIX}request-id", "value": tag_value(job.request_id)})
    return tags


@dataclass(frozen=True)
class TaskSize:
    """A task-level CPU and memory override (Fargate's valid pairs: see `for_memory`)."""

    cpu: int
    memory: int

    # Fargate: the memory range (MiB) each CPU size accepts.
    _MEMORY_RANGES: ClassVar[tuple[tuple[int, int, int], ...]] = (
        (256, 512, 2048),
        (512, 1024, 4096),
        (1024, 2048, 8192),
        (2048, 4096, 16384),
        (4096, 8192, 30720),
    )

    @classmethod
    def for_memory(cls, memory: int, at_least_cpu: int) -> TaskSize:
        """The smallest valid Fargate size with this memory and no less CPU than `at_least_cpu`."""
        for cpu, low, high in cls._MEMORY_RANGES:
            if cpu >= at_least_cpu and high >= memory:
                return cls(cpu, max(memory, low))
        raise ValueError(f"no Fargate task size has {memory} MiB with at least {at_least_cpu} CPU units")


def run_task_request(
    job: Job, settings: Settings, capacity: Capacity, size: TaskSize | None = None
) -> RunTaskRequestTypeDef:
    request: RunTaskRequestTypeDef = {
        "cluster": settings.cluster_arn,
        "taskDefinition": settings.task_definition_arn,
        "count": 1,
        "clientToken": client_token(job, capacity),
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(settings.subnet_ids),
                "securityGroups": list(settings.security_group_ids),
                "assignPublicIp": settings.assign_public_ip,
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": settings.container_name,
                    "environment": [{"name": JOB_VARIABLE, "value": job.to_json()}],
                }
            ]
        },
        "startedBy": STARTED_BY,
        "tags": task_tags(job),
        "enableECSManagedTags": True,
        "propagateTags": "TASK_DEFINITION",
    }
    if size is not None:
        request["overrides"]["cpu"] = str(size.cpu)
        request["overrides"]["memory"] = str(size.memory)
    # launchType and capacityProviderStrategy are mutually exclusive; Spot needs the strategy.
    if capacity is Capacity.SPOT:
        request["capacityProviderStrategy"] = [{"capacityProvider": Capacity.SPOT.value, "weight": 1}]
    else:
        request["launchType"] = "FARGATE"
    return request


def is_capacity_shortage(reason: str) -> bool:
    # ECS: "Capacity is unavailable at this time. Please try again later or in a different availability zone"
    lowered = reason.lower()
    return "capacity" in lowered and "unavailable" in lowered


def is_retryable(reason: str) -> bool:
    """RunTask `failures` reasons that may clear on their own (resource or agent shortages)."""
    return is_capacity_shortage(reason) or reason.startswith("RESOURCE:") or reason == "AGENT"


@dataclass
class TaskLauncher:
    settings: Settings
    client: ECSClient
    retry_delays: Sequence[float] = FAILURE_RETRY_DELAYS
    sleep: Callable[[float], None] = time.sleep
    # Seconds left in the invocation (the Lambda context's); None: no limit (CLI, tests).
    time_left: Callable[[], float] | None = None
    # A call is started only when it can finish, retries included, before the invocation ends.
    call_budget: float = WORST_CALL_SECONDS

    def launch(self, job: Job, *, size: TaskSize | None = None, on_demand: bool = False) -> LaunchedTask:
        """Start the job's task: Spot first when enabled (and not `on_demand`), on-demand when Spot
        has no capacity. `size` overrides the task definition's CPU and memory.

        Raises LaunchError when no task could be started.
        """
        if on_demand or not self.settings.use_fargate_spot:
            return self._launch_with(job, Capacity.ON_DEMAND, size)
        try:
            return self._launch_with(job, Capacity.SPOT, size)
        except _SpotUnavailableError:
            launched = self._launch_with(job, Capacity.ON_DEMAND, size)
            return LaunchedTask(
                launched.task_arn,
                launched.capacity,
                launched.attempts,
                fell_back_to_on_demand=True,
                already_started=launched.already_started,
            )

    def _launch_with(self, job: Job, capacity: Capacity, size: TaskSize | None) -> LaunchedTask:
        request = run_task_request(job, self.settings, capacity, size)
        attempts = len(self.retry_delays) + 1
        for attempt in range(1, attempts + 1):
            self._check_time(capacity)
            called_at = datetime.now(UTC)
            try:
                response = self.client.run_task(**request)
            except ClientError as error:
                return self._already_started(error, capacity, attempt)
            if response.get("tasks"):
                task = response["tasks"][0]
                return LaunchedTask(
                    task["taskArn"], capacity, attempt, already_started=_created_before(task, called_at)
                )
            reason = _failure_reason(response.get("failures", []))
            if capacity is Capacity.SPOT and is_capacity_shortage(reason):
                raise _SpotUnavailableError(reason)
            if not is_retryable(reason):
                raise LaunchError(f"RunTask on {capacity.value} failed: {reason}")
            if attempt < attempts:
                self.sleep(self.retry_delays[attempt - 1])
        if capacity is Capacity.SPOT:
            raise _SpotUnavailableError(reason)
        raise LaunchError(f"RunTask on {capacity.value} still failing after {attempts} attempts: {reason}")

    def _check_time(self, capacity: Capacity) -> None:
        if self.time_left is not None and (left := self.time_left()) < self.call_budget:
            raise LaunchError(
                f"RunTask on {capacity.value} not tried: {left:.0f} s left in this invocation, "
                f"a call may take {self.call_budget:.0f} s (the event is retried)"
            )

    @staticmethod
    def _already_started(error: ClientError, capacity: Capacity, attempt: int) -> LaunchedTask:
        """A repeated event: ECS names the task this token already started. Anything else fails."""
        code = error.response.get("Error", {}).get("Code", "")
        # botocore copies the modelled fields of an error, here ConflictException.resourceIds, to the top.
        task_arns = error.response.get("resourceIds")
        if code == "ConflictException" and isinstance(task_arns, list) and task_arns:
            return LaunchedTask(str(task_arns[0]), capacity, attempt, already_started=True)
        message = error.response.get("Error", {}).get("Message", "")
        raise LaunchError(f"RunTask on {capacity.value} failed: {code}: {message}") from error


class _SpotUnavailableError(Exception):
    pass


def _created_before(task: TaskTypeDef, called_at: datetime) -> bool:
    """True when RunTask answered with a task an earlier call made: ECS's answer to a known token.

    A new task is created during the call; one created well before it is a repeat.
    """
    created = task.get("createdAt")
    return created is not None and created < called_at - REPEAT_TOLERANCE


def _failure_reason(failures: Sequence[FailureTypeDef]) -> str:
    reasons = [f"{f.get('reason', '?')}" + (f" ({f['detail']})" if f.get("detail") else "") for f in failures]
    return "; ".join(reasons) or "RunTask started no task and reported no failure"
