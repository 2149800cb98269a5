"""Retries wait in an SQS queue: a message per retry, delayed by the backoff, read by the recovery function.

Why a queue and not a sleep: the wait costs no Lambda time, survives a failed invocation (SQS
delivers at least once, and RunTask's client token makes a second delivery start no second task),
and SQS's per-message delay (up to 15 minutes) is the backoff itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thumbnail_launcher.jobs import Job
from thumbnail_launcher.recovery import Retry
from thumbnail_launcher.tasks import TaskSize

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class RetryQueue:
    client: SQSClient
    url: str

    def send(self, retry: Retry, previous_task_arn: str) -> None:
        self.client.send_message(
            QueueUrl=self.url,
            MessageBody=encode(retry, previous_task_arn),
            DelaySeconds=retry.delay_seconds,
        )


def encode(retry: Retry, previous_task_arn: str) -> str:
    size = None if retry.size is None else {"cpu": retry.size.cpu, "memory": retry.size.memory}
    return json.dumps(
        {
            "job": retry.job.contract(),
            "reason": retry.reason,
            "size": size,
            "on_demand": retry.on_demand,
            "alone": retry.alone,
            "previous_task_arn": previous_task_arn,
        },
        sort_keys=True,
    )


def decode(body: str) -> tuple[Retry, str]:
    """A queued retry and the task it follows; raises ValueError for a body this module did not write."""
    data: Any = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a retry message is a JSON object")
    size = data.get("size")
    retry = Retry(
        job=Job.from_contract(data.get("job")),
        reason=str(data.get("reason", "")),
        delay_seconds=0,
        size=TaskSize(int(size["cpu"]), int(size["memory"])) if isinstance(size, dict) else None,
        on_demand=bool(data.get("on_demand")),
        alone=bool(data.get("alone")),
    )
    return retry, str(data.get("previous_task_arn", ""))
