"""One ECS Fargate task per job: the RunTask request, its idempotency token, and what to do when it fails."""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from thumbnail_launcher.jobs import Job
from thumbnail_launcher.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import FailureTypeDef, RunTaskRequestTypeDef, TagTypeDef

JOB_VARIABLE = "THUMBNAIL_JOB"
# Constant, so that `list-tasks --started-by thumbnail-launcher` finds every thumbnail task
# (startedBy: at most 36 characters of letters, digits, '-', '/' and '_').
STARTED_BY = "thumbnail-launcher"
TAG_PREFIX = "thumbnail-creator:"
TAG_VALUE_MAX = 256
# Between attempts after RunTask answers with retryable `failures` (throttling and 5xx are
# botocore's job: see clients.py).
FAILURE_RETRY_DELAYS = (1.0, 2.0)


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
    write = job.sequencer or f"etag:{job.etag}"
    identity = "\0".join((job.bucket, job.key, job.version_id or "", write, capacity.value))
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


def run_task_request(job: Job, settings: Settings, capacity: Capacity) -> RunTaskRequestTypeDef:
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

    def launch(self, job: Job) -> LaunchedTask:
        """Start the job's task: Spot first when enabled, on-demand when Spot has no capacity.

        Raises LaunchError when no task could be started.
        """
        if not self.settings.use_fargate_spot:
            return self._launch_with(job, Capacity.ON_DEMAND)
        try:
            return self._launch_with(job, Capacity.SPOT)
        except _SpotUnavailableError:
            launched = self._launch_with(job, Capacity.ON_DEMAND)
            return LaunchedTask(
                launched.task_arn,
                launched.capacity,
                launched.attempts,
                fell_back_to_on_demand=True,
                already_started=launched.already_started,
            )

    def _launch_with(self, job: Job, capacity: Capacity) -> LaunchedTask:
        request = run_task_request(job, self.settings, capacity)
        attempts = len(self.retry_delays) + 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.client.run_task(**request)
            except ClientError as error:
                return self._already_started(error, capacity, attempt)
            if response.get("tasks"):
                return LaunchedTask(response["tasks"][0]["taskArn"], capacity, attempt)
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


def _failure_reason(failures: Sequence[FailureTypeDef]) -> str:
    reasons = [f"{f.get('reason', '?')}" + (f" ({f['detail']})" if f.get("detail") else "") for f in failures]
    return "; ".join(reasons) or "RunTask started no task and reported no failure"
