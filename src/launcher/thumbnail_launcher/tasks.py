"""One ECS Fargate task for a job, or for a batch of waiting jobs: the RunTask request, its
idempotency token, and what to do when it fails."""

from __future__ import annotations

import hashlib
import json
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
# A batch task's jobs (docs/contract.md "Several jobs per task"): a JSON array, in running order.
JOBS_VARIABLE = "THUMBNAIL_JOBS"
# ECS refuses overrides longer than 8192 characters in all (RunTask API reference, TaskOverride);
# a batch keeps its THUMBNAIL_JOBS well within that, leaving room for the structure around it.
OVERRIDE_CHARACTERS = 6000
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
    """A job whose task could not be started; `reason` says why (a RunTask failure or an API error).

    `limit`: the account is at a quota (vCPUs, tasks, API rate) or Fargate has no capacity. Not
    an error of the job: it waits in the pending-jobs queue until capacity frees (README "Quotas").
    """

    def __init__(self, reason: str, *, limit: bool = False) -> None:
        self.reason = reason
        self.limit = limit
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
    # The attempt and the origin make each retry, sweep and replay a task of its own, while a
    # repeated STOPPED event for one attempt asks for the same next attempt (ECS starts it once).
    identity = f"{job.identity()}\0{capacity.value}"
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


def task_tags(job: Job, jobs: int = 1) -> list[TagTypeDef]:
    """The (first) job's bucket, key and request id; a batch task also says how many jobs it runs."""
    tags: list[TagTypeDef] = [
        {"key": f"{TAG_PREFIX}bucket", "value": tag_value(job.bucket)},
        {"key": f"{TAG_PREFIX}key", "value": tag_value(job.key)},
    ]
    if job.request_id:
        tags.append({"key": f"{TAG_PREFIX}request-id", "value": tag_value(job.request_id)})
    if jobs > 1:
        tags.append({"key": f"{TAG_PREFIX}jobs", "value": str(jobs)})
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


@dataclass(frozen=True)
class TaskPlan:
    """What one task runs: one job, or a batch of waiting jobs run one after another, at one size."""

    jobs: tuple[Job, ...]
    size: TaskSize | None = None
    on_demand: bool = False

    @property
    def job(self) -> Job:
        return self.jobs[0]

    def token(self, capacity: Capacity) -> str:
        """A single job's token as before; a batch's is derived from its jobs' tokens, in order."""
        if len(self.jobs) == 1:
            return client_token(self.job, capacity)
        joined = "\0".join(client_token(job, capacity) for job in self.jobs)
        return hashlib.sha256(f"batch\0{joined}".encode()).hexdigest()

    def variable(self) -> tuple[str, str]:
        """The container override: THUMBNAIL_JOB for one job, THUMBNAIL_JOBS for a batch."""
        if len(self.jobs) == 1:
            return JOB_VARIABLE, self.job.to_json()
        return JOBS_VARIABLE, jobs_json(self.jobs)

    def to_json(self) -> str:
        size = None if self.size is None else {"cpu": self.size.cpu, "memory": self.size.memory}
        contracts = [job.contract() for job in self.jobs]
        return json.dumps({"jobs": contracts, "size": size, "on_demand": self.on_demand}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TaskPlan:
        data = json.loads(text)
        size = data.get("size")
        return cls(
            tuple(Job.from_contract(item) for item in data["jobs"]),
            TaskSize(int(size["cpu"]), int(size["memory"])) if isinstance(size, dict) else None,
            bool(data.get("on_demand")),
        )


def jobs_json(jobs: Sequence[Job]) -> str:
    return json.dumps([job.contract() for job in jobs], sort_keys=True, separators=(",", ":"))


def run_task_request(
    plan: TaskPlan | Job, settings: Settings, capacity: Capacity, size: TaskSize | None = None
) -> RunTaskRequestTypeDef:
    if isinstance(plan, Job):
        plan = TaskPlan((plan,), size)
    name, value = plan.variable()
    request: RunTaskRequestTypeDef = {
        "cluster": settings.cluster_arn,
        "taskDefinition": settings.task_definition_arn,
        "count": 1,
        "clientToken": plan.token(capacity),
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
                    "environment": [{"name": name, "value": value}],
                }
            ]
        },
        "startedBy": STARTED_BY,
        "tags": task_tags(plan.job, len(plan.jobs)),
        "enableECSManagedTags": True,
        "propagateTags": "TASK_DEFINITION",
    }
    if plan.size is not None:
        request["overrides"]["cpu"] = str(plan.size.cpu)
        request["overrides"]["memory"] = str(plan.size.memory)
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
    """RunTask `failures` reasons that may clear on their own within seconds (resource or agent shortages)."""
    return is_capacity_shortage(reason) or reason.startswith("RESOURCE:") or reason == "AGENT"


# RunTask `failures` reasons of an account at its Fargate quotas (ECS troubleshooting guide, "Amazon
# ECS stopped tasks error messages" and the service quotas page): "You've reached the limit on the
# number of vCPUs you can run concurrently", "... tasks you can run concurrently", "The requested
# CPU configuration is above your limit". Only time clears them: the job waits in the queue.
_LIMIT_PHRASES = ("reached the limit on the number of", "above your limit")
# API errors that mean "too fast": botocore's retries were not enough, the queue is.
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})


def is_limit_failure(reason: str) -> bool:
    lowered = reason.lower().replace("\u2019", "'")
    return any(phrase in lowered for phrase in _LIMIT_PHRASES)


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
        return self.start(TaskPlan((job,), size, on_demand))

    def start(self, plan: TaskPlan) -> LaunchedTask:
        """Start the task of `plan` (one job or a batch), as `launch` does."""
        if plan.on_demand or not self.settings.use_fargate_spot:
            return self._launch_with(plan, Capacity.ON_DEMAND)
        try:
            return self._launch_with(plan, Capacity.SPOT)
        except _SpotUnavailableError:
            launched = self._launch_with(plan, Capacity.ON_DEMAND)
            return LaunchedTask(
                launched.task_arn,
                launched.capacity,
                launched.attempts,
                fell_back_to_on_demand=True,
                already_started=launched.already_started,
            )

    def _launch_with(self, plan: TaskPlan, capacity: Capacity) -> LaunchedTask:
        request = run_task_request(plan, self.settings, capacity)
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
            if is_limit_failure(reason):
                raise LaunchError(f"RunTask on {capacity.value} refused: {reason}", limit=True)
            if not is_retryable(reason):
                raise LaunchError(f"RunTask on {capacity.value} failed: {reason}")
            if attempt < attempts:
                self.sleep(self.retry_delays[attempt - 1])
        if capacity is Capacity.SPOT:
            raise _SpotUnavailableError(reason)
        raise LaunchError(
            f"RunTask on {capacity.value} still failing after {attempts} attempts: {reason}", limit=True
        )

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
        raise LaunchError(
            f"RunTask on {capacity.value} failed: {code}: {message}", limit=code in THROTTLING_CODES
        ) from error


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
