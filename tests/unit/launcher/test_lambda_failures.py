"""A worker function invocation that failed: its destination record -> a Fargate task, or the job given up."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.unit.launcher.test_recovery_decisions import SETTINGS
from thumbnail_launcher.failures import Failure
from thumbnail_launcher.lambda_failures import (
    LambdaFailureKind,
    decide,
    is_failure_record,
    parse_failure_record,
)
from thumbnail_launcher.recovery import Retry
from thumbnail_launcher.retries import decode

JOB = {
    "bucket": "thumbnails-123456789012-us-east-1-0a1b2c3d4e5f",
    "key": "videos/a.mp4",
    "version_id": None,
    "etag": "abc",
    "size": 10,
    "event_time": "2026-01-01T00:00:00Z",
    "request_id": "R1",
    "attempt": 1,
    "origin": "event",
}


def record(condition: str = "RetriesExhausted", **payload: Any) -> dict[str, Any]:
    """The shape Lambda sends to an on-failure destination (Lambda developer guide)."""
    return {
        "version": "1.0",
        "timestamp": "2026-01-01T00:00:05.000Z",
        "requestContext": {
            "requestId": "e4b46cbf",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:worker:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 1,
        },
        "requestPayload": dict(JOB),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": payload or {"errorMessage": "boom", "errorType": "WorkerFunctionError"},
    }


@pytest.mark.parametrize(
    ("made", "kind"),
    [
        (record(errorType="Sandbox.Timedout", errorMessage="Task timed out after 60.00 seconds"), "timeout"),
        (record(errorMessage="RequestId: x Error: Task timed out after 60.00 seconds"), "timeout"),
        (record(errorType="Runtime.OutOfMemory", errorMessage="..."), "out_of_memory"),
        (
            record(errorType="Runtime.ExitError", errorMessage="Runtime exited with error: signal: killed"),
            "out_of_memory",
        ),
        (record("EventAgeExceeded"), "event_age"),
        (record(), "error"),
    ],
)
def test_each_failure_is_classified(made: dict[str, Any], kind: str) -> None:
    assert is_failure_record(made)
    failure = parse_failure_record(made)
    assert (
        failure.kind
        is {
            "timeout": LambdaFailureKind.TIMEOUT,
            "out_of_memory": LambdaFailureKind.OUT_OF_MEMORY,
            "event_age": LambdaFailureKind.EVENT_AGE_EXCEEDED,
            "error": LambdaFailureKind.ERROR,
        }[kind]
    )
    assert failure.job.key == "videos/a.mp4" and failure.invocation == "lambda:e4b46cbf"


def test_auto_starts_the_same_job_at_the_next_attempt_at_once() -> None:
    decision = decide(parse_failure_record(record(errorType="Sandbox.Timedout")), SETTINGS)
    assert isinstance(decision, Retry)
    assert decision.job.attempt == 2 and decision.job.key == "videos/a.mp4" and decision.delay_seconds == 0
    assert decision.reason.startswith("lambda_timeout")


def test_the_last_attempt_and_the_lambda_runtime_give_up() -> None:
    last = record()
    last["requestPayload"]["attempt"] = SETTINGS.max_attempts
    assert isinstance(decide(parse_failure_record(last), SETTINGS), Failure)
    always_lambda = dataclasses.replace(
        SETTINGS, launch=dataclasses.replace(SETTINGS.launch, runtime="lambda")
    )
    given_up = decide(parse_failure_record(record(errorType="Runtime.OutOfMemory")), always_lambda)
    assert isinstance(given_up, Failure) and given_up.reason == "lambda_out_of_memory"
    assert given_up.task_arn == "lambda:e4b46cbf"


def test_a_retry_message_is_not_a_failure_record() -> None:
    body = {
        "job": JOB,
        "reason": "handed_off: x",
        "size": None,
        "on_demand": False,
        "previous_task_arn": "lambda:1",
    }
    assert not is_failure_record(body)


def test_the_workers_hand_off_message_is_a_retry_the_recovery_function_reads() -> None:
    import json

    from thumbnailer.settings import Settings

    sent: list[str] = []

    class Queue:
        def send_message(self, QueueUrl: str, MessageBody: str) -> None:
            sent.append(MessageBody)

    import thumbnailer.lambda_handler as handler

    settings = Settings.from_environment({"THUMBNAIL_JOB": json.dumps(JOB)})
    original = handler._sqs_client
    handler._sqs_client = Queue  # type: ignore[assignment]
    try:
        handler._hand_off(settings, {"RETRY_QUEUE_URL": "https://q/123456789012/retries"}, "too long", "req")
    finally:
        handler._sqs_client = original  # type: ignore[assignment]
    retry, previous = decode(sent[0])
    assert retry.job.attempt == 2 and retry.job.key == JOB["key"] and retry.size is None
    assert retry.reason == "handed_off: too long" and previous == "lambda:req"
