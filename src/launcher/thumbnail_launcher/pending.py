"""The pending-jobs queue (SQS): jobs that found the account at its quotas wait here for capacity.

A message is a job as the retry queue carries it (retries.py: the job, why, size, on-demand). It
has no delay and no redrive policy: a job waits up to the queue's retention (14 days), not a
Lambda retry window. Nothing consumes it on its own: the drain (drain.py) receives only as many
jobs as free task slots can take, so a waiting job is not received, and not counted as a failed
receive, while the account is full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from thumbnail_launcher.recovery import Retry
from thumbnail_launcher.retries import decode, encode

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# ReceiveMessage returns at most 10 messages; ...Batch calls take at most 10 entries.
SQS_BATCH = 10
# Received jobs are hidden this long: longer than a drain (the recovery function's timeout).
RECEIVE_VISIBILITY_SECONDS = 180


@dataclass(frozen=True)
class PendingJob:
    retry: Retry
    receipt: str
    sent_at: datetime

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.sent_at).total_seconds()


@dataclass(frozen=True)
class PendingQueue:
    client: SQSClient
    url: str

    def put(self, retry: Retry, previous_task_arn: str = "") -> None:
        self.client.send_message(QueueUrl=self.url, MessageBody=encode(retry, previous_task_arn))

    def depth(self) -> int:
        """Jobs waiting (SQS's approximate count of visible messages)."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", "0"))

    def receive(self, count: int) -> list[PendingJob]:
        """Up to `count` waiting jobs (fewer when the queue holds fewer), hidden while they start."""
        received: list[PendingJob] = []
        while len(received) < count:
            messages = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(SQS_BATCH, count - len(received)),
                VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
                MessageSystemAttributeNames=["SentTimestamp"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                retry, _ = decode(message["Body"])
                sent_ms = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
                received.append(
                    PendingJob(retry, message["ReceiptHandle"], datetime.fromtimestamp(sent_ms / 1000, UTC))
                )
        return received

    def done(self, jobs: Sequence[PendingJob]) -> None:
        for start in range(0, len(jobs), SQS_BATCH):
            chunk = jobs[start : start + SQS_BATCH]
            self.client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": job.receipt} for i, job in enumerate(chunk)],
            )

    def give_back(self, jobs: Sequence[PendingJob]) -> None:
        """Visible again at once: the jobs were received but not started (no slot after all)."""
        for start in range(0, len(jobs), SQS_BATCH):
            chunk = jobs[start : start + SQS_BATCH]
            self.client.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": job.receipt, "VisibilityTimeout": 0}
                    for i, job in enumerate(chunk)
                ],
            )
