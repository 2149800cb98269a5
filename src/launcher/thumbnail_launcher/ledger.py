"""The job ledger (DynamoDB): one item per job attempt, so that each attempt starts one task.

A job reaches a task by three roads: the S3 event (the launcher), the pending-jobs queue (the
drain) and the retry queue, sweep or replay (the recovery function); each may deliver it more than
once (S3 events, SQS and EventBridge are at-least-once). RunTask's client token makes a repeated
RunTask of the same request start nothing, but a batch from the pending queue is a new request.
The ledger is what every road checks first:

    (none) --mark_waiting--> waiting --claim--> starting --started--> started
                                ^                  |
                                +----release-------+   (RunTask refused: quota or capacity)
                                                   +--> failed (refused for another reason: the
                                                        job is in no queue; a new delivery or a
                                                        replay starts it as if new)

`starting` keeps the plan and its token, so a crash between the claim and RunTask is repaired by
whoever meets the job next: it repeats that exact RunTask, which ECS starts at most once.
Writes are conditional (DynamoDB developer guide, "Condition expressions"); items expire after
the pending queue's retention through DynamoDB's TTL.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from thumbnail_launcher.jobs import Job
from thumbnail_launcher.tasks import TaskPlan

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Longer than the pending queue's retention (14 days), so a waiting job is never forgotten.
ITEM_LIFETIME_SECONDS = 15 * 24 * 3600
_CONDITION_FAILED = "ConditionalCheckFailedException"


class JobState(StrEnum):
    WAITING = "waiting"
    STARTING = "starting"
    STARTED = "started"
    FAILED = "failed"


@dataclass(frozen=True)
class Entry:
    """What the ledger knows of one job attempt."""

    state: JobState
    plan: TaskPlan | None = None  # starting or started: the task it is (being) started in
    token: str = ""
    task_arn: str = ""


def job_id(job: Job) -> str:
    return hashlib.sha256(job.identity().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JobLedger:
    client: DynamoDBClient
    table: str

    def entry(self, job: Job) -> Entry | None:
        item = self.client.get_item(TableName=self.table, Key=_key(job), ConsistentRead=True).get("Item")
        if not item:
            return None
        plan = item.get("task_plan", {}).get("S")
        return Entry(
            JobState(item["job_state"]["S"]),
            TaskPlan.from_json(plan) if plan else None,
            item.get("plan_token", {}).get("S", ""),
            item.get("task_arn", {}).get("S", ""),
        )

    def mark_waiting(self, job: Job) -> bool:
        """Record a job just queued; False when the ledger already knew it (left as it was)."""
        return self._update(
            job,
            "SET job_state = :waiting, expires_at = :expires",
            "attribute_not_exists(job_id) OR job_state = :failed",
            {":waiting": {"S": JobState.WAITING}, ":failed": {"S": JobState.FAILED}},
        )

    def claim(self, job: Job, plan: TaskPlan, token: str) -> bool:
        """Take a new, waiting or failed job for `plan`; False when another start already has it."""
        return self._update(
            job,
            "SET job_state = :starting, task_plan = :plan, plan_token = :token, expires_at = :expires",
            "attribute_not_exists(job_id) OR job_state IN (:waiting, :failed)",
            {
                ":starting": {"S": JobState.STARTING},
                ":waiting": {"S": JobState.WAITING},
                ":failed": {"S": JobState.FAILED},
                ":plan": {"S": plan.to_json()},
                ":token": {"S": token},
            },
        )

    def started(self, job: Job, token: str, task_arn: str) -> None:
        self._update(
            job,
            "SET job_state = :started, task_arn = :task",
            "plan_token = :token",
            {":started": {"S": JobState.STARTED}, ":token": {"S": token}, ":task": {"S": task_arn}},
            expires=False,
        )

    def release(self, job: Job, token: str, state: JobState = JobState.WAITING) -> None:
        """Back to waiting after RunTask refused the plan for a quota (the job is queued again
        first), or to failed after any other refusal."""
        self._update(
            job,
            "SET job_state = :state REMOVE task_plan, plan_token",
            "plan_token = :token AND job_state = :starting",
            {
                ":state": {"S": state},
                ":starting": {"S": JobState.STARTING},
                ":token": {"S": token},
            },
            expires=False,
        )

    def _update(
        self,
        job: Job,
        expression: str,
        condition: str,
        values: dict[str, dict[str, str]],
        *,
        expires: bool = True,
    ) -> bool:
        if expires:
            values = {**values, ":expires": {"N": str(int(time.time()) + ITEM_LIFETIME_SECONDS)}}
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_key(job),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise
        return True


def _key(job: Job) -> dict[str, dict[str, str]]:
    return {"job_id": {"S": job_id(job)}}
