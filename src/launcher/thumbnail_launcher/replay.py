"""Replay: relaunch the jobs the failed-jobs queue holds and the events the launcher's DLQ holds.

A failed-jobs message carries its job (failures.py). A dead-letter message is Lambda's failure
record for an asynchronous invocation, with the original S3 event as `requestPayload` (Lambda
developer guide, "Asynchronous invocation", destinations). Each replayed job is a new job chain
whose origin names the message, so replaying one message twice starts one task; a message is
deleted once everything it holds has started.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import S3Event

from thumbnail_launcher.batch import Launcher
from thumbnail_launcher.jobs import InvalidEventError, Job, parse_event
from thumbnail_launcher.tasks import LaunchError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_MESSAGES = 10  # SQS's largest receive


@dataclass
class ReplayReport:
    messages: int = 0
    jobs: list[str] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "jobs": len(self.jobs),
            "launched": len(self.launched),
            "launch_failures": len(self.failed),
            "unreadable_messages": len(self.unreadable),
        }


def jobs_in(body: str, *, video_prefix: str, video_suffix: str, bucket_name: str | None) -> list[Job]:
    """The jobs a failed-jobs or dead-letter message holds; raises ValueError for anything else."""
    data = json.loads(body)
    if isinstance(data, dict) and isinstance(data.get("job"), dict):
        return [Job.from_contract(data["job"])]
    payload = data.get("requestPayload") if isinstance(data, dict) else None
    if not isinstance(payload, dict):
        raise ValueError("neither a failed job nor a Lambda failure record with a requestPayload")
    try:
        parsed = parse_event(
            S3Event(payload), video_prefix=video_prefix, video_suffix=video_suffix, bucket_name=bucket_name
        )
    except InvalidEventError as error:
        raise ValueError(str(error)) from None
    return list(parsed.jobs)


@dataclass
class Replayer:
    sqs: SQSClient
    video_prefix: str
    video_suffix: str
    bucket_name: str | None

    def run(self, queue_url: str, launcher: Launcher | None, report: ReplayReport) -> None:
        """Every message in the queue once; with a launcher, relaunch and delete what started.

        What stays (a dry run, a failed launch) is made visible again at the end, not left hidden
        for the receive's visibility timeout.
        """
        seen: set[str] = set()
        kept: list[str] = []
        try:
            while fresh := self._receive(queue_url, seen):
                for message in fresh:
                    seen.add(message["MessageId"])
                    report.messages += 1
                    if self._replay(message, launcher, report):
                        self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    else:
                        kept.append(message["ReceiptHandle"])
        finally:
            for handle in kept:
                self.sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )

    def _receive(self, queue_url: str, seen: set[str]) -> list[Any]:
        messages = self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=MAX_MESSAGES, WaitTimeSeconds=0, VisibilityTimeout=300
        ).get("Messages", [])
        return [m for m in messages if m["MessageId"] not in seen]

    def _replay(self, message: Any, launcher: Launcher | None, report: ReplayReport) -> bool:
        try:
            jobs = jobs_in(
                message["Body"],
                video_prefix=self.video_prefix,
                video_suffix=self.video_suffix,
                bucket_name=self.bucket_name,
            )
        except (ValueError, TypeError) as error:
            report.unreadable.append(f"{message['MessageId']}: {error}")
            return False
        report.jobs += [job.key for job in jobs]
        if launcher is None:
            return False
        started = True
        for job in jobs:
            try:
                launcher.launch(job.relaunched(f"replay:{message['MessageId']}"))
            except LaunchError as error:
                report.failed.append((job.key, error.reason))
                started = False
            else:
                report.launched.append(job.key)
        return started
