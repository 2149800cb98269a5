"""Lambda's SQS event source mapping, locally: batches from a queue to a function, in-process.

Like the service: up to BatchSize messages per invocation, in the event shape Lambda gives
(`Records` with messageId, receiptHandle, body, attributes...). With ReportBatchItemFailures the
function's `batchItemFailures` stay in the queue and the rest are deleted; a failed invocation
leaves the whole batch. What stays is received again after a short wait here (the queue's
visibility timeout on AWS), and the queue's redrive policy counts the receives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from local_stack.deploy import QueueMapping
from local_stack.events import EventPump
from local_stack.loops import Loop

LOG = logging.getLogger(__name__)
RETRY_VISIBILITY_S = 1  # AWS: the queue's visibility timeout; a second keeps local runs quick


class QueuePoller:
    def __init__(self, pump: EventPump, mapping: QueueMapping, *, poll_wait_s: int = 1) -> None:
        self._pump = pump  # invokes the function as its execution environment would
        self._mapping = mapping
        self._sqs = pump.sqs
        self._poll_wait_s = poll_wait_s
        self._lock = threading.Lock()
        self._busy = False
        self._loop = Loop("queue poller", self._poll_once)
        self.errors = self._loop.errors

    def start(self) -> QueuePoller:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()

    def idle(self) -> bool:
        """Nothing being handled, nothing waiting: visible, in flight or delayed (a backoff)."""
        with self._lock:
            if self._busy:
                return False
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._mapping.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    def _poll_once(self) -> None:
        messages = self._sqs.receive_message(
            QueueUrl=self._mapping.queue_url,
            MaxNumberOfMessages=min(self._mapping.batch_size, 10),
            WaitTimeSeconds=self._poll_wait_s,
            VisibilityTimeout=60,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        with self._lock:
            self._busy = True
        try:
            self._deliver(messages)
        finally:
            with self._lock:
                self._busy = False

    def _deliver(self, messages: Sequence[Mapping[str, Any]]) -> None:
        invocation = self._pump.invoke(sqs_event(messages, self._mapping.queue_url))
        failed = (
            {m["MessageId"] for m in messages} if invocation.error else self._item_failures(invocation.result)
        )
        for message in messages:
            if message["MessageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self._mapping.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=RETRY_VISIBILITY_S,
                )
            else:
                self._sqs.delete_message(
                    QueueUrl=self._mapping.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def _item_failures(self, result: Any) -> set[str]:
        if not self._mapping.report_batch_item_failures or not isinstance(result, Mapping):
            return set()
        return {str(item.get("itemIdentifier")) for item in result.get("batchItemFailures", [])}


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_url: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping gives a function for these messages."""
    account, name = queue_url.rstrip("/").rsplit("/", 2)[-2:]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:{account}:{name}",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }
