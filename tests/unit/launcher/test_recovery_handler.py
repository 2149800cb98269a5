"""The recovery function on moto: stopped tasks retried through the queue, or given up with a manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest
from test_recovery_decisions import OOM, stopped

from launcher_support import (
    BUCKET,
    LambdaContext,
    RecoveryWorld,
    RunTaskWire,
    emitted,
    job_of,
    load_event,
)
from local_stack import moto_hooks
from local_stack.queue_poller import sqs_event
from thumbnail_launcher.retries import decode

MANIFEST_KEY = "thumbnails/big-buck-bunny.mp4.json"


def stopped_event(world: RecoveryWorld, **values: Any) -> dict[str, Any]:
    event = load_event("task-stopped.json")
    detail = stopped(**values)
    detail["clusterArn"] = world.ecs.cluster_arn
    detail["taskDefinitionArn"] = world.ecs.task_definition_arn
    event["detail"] = detail
    return event


def queued(url: str) -> list[dict[str, Any]]:
    """Every message in a queue (received once, with its receive count)."""
    sqs, messages = boto3.client("sqs"), []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageSystemAttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
    return messages


def manifest() -> dict[str, Any] | None:
    try:
        body = boto3.client("s3").get_object(Bucket=BUCKET, Key=MANIFEST_KEY)["Body"].read()
    except boto3.client("s3").exceptions.NoSuchKey:
        return None
    document: dict[str, Any] = json.loads(body)
    return document


@pytest.fixture
def recovery(configure_recovery: Callable[..., ModuleType]) -> ModuleType:
    return configure_recovery(RETRY_DELAY_SECONDS="0")


def test_a_finished_task_needs_nothing(
    recovery: ModuleType, recovery_world: RecoveryWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = recovery.lambda_handler(stopped_event(recovery_world, exit_code=0), LambdaContext())
    assert result == {"action": "none", "kind": "succeeded"}
    assert queued(recovery_world.retry_queue_url) == []
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics == {"JobsSucceeded": 1}


def test_a_video_the_worker_refused_keeps_the_workers_manifest(
    recovery: ModuleType, recovery_world: RecoveryWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = recovery.lambda_handler(stopped_event(recovery_world, exit_code=3), LambdaContext())
    assert result["action"] == "none"
    assert manifest() is None and queued(recovery_world.failed_jobs_queue_url) == []
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics == {"JobsReported": 1}


def test_out_of_memory_is_retried_with_twice_the_memory_as_attempt_two(
    recovery: ModuleType, recovery_world: RecoveryWorld, wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    event = stopped_event(recovery_world, exit_code=137, reason=OOM)
    assert recovery.lambda_handler(event, LambdaContext())["action"] == "retry"
    (message,) = queued(recovery_world.retry_queue_url)
    retry, previous = decode(message["Body"])
    assert previous == event["detail"]["taskArn"]
    assert retry.job.attempt == 2 and retry.reason.startswith("out_of_memory")

    response = recovery.lambda_handler(sqs_event([message], recovery_world.retry_queue_url), LambdaContext())
    assert response == {"batchItemFailures": []}
    (request,) = wire.requests
    assert (request["overrides"]["cpu"], request["overrides"]["memory"]) == ("1024", "4096")
    job = job_of(request)
    assert (job["attempt"], job["key"], job["request_id"]) == (
        2,
        "videos/big-buck-bunny.mp4",
        "C3D13FE58DE4C810",
    )
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics == {"RetriesScheduled": 1, "RetriesStarted": 1}
    # The S3 request id follows the video through the recovery function's logs.
    assert {log.get("correlation_id") for log in logs if "Retry" in log["message"]} == {"C3D13FE58DE4C810"}


def test_a_repeated_stopped_event_starts_the_next_attempt_once(
    recovery: ModuleType, recovery_world: RecoveryWorld, wire: RunTaskWire
) -> None:
    """EventBridge delivers at least once: both deliveries ask for attempt 2; the job ledger
    starts it once (the second retry message finds it started: no second RunTask)."""
    moto_hooks.honour_run_task_client_token()
    event = stopped_event(recovery_world, exit_code=1)
    recovery.lambda_handler(event, LambdaContext())
    recovery.lambda_handler(event, LambdaContext())
    messages = queued(recovery_world.retry_queue_url)
    assert len(messages) == 2
    recovery.lambda_handler(sqs_event(messages, recovery_world.retry_queue_url), LambdaContext())
    (request,) = wire.requests
    assert (
        json.loads(request["overrides"]["containerOverrides"][0]["environment"][0]["value"])["attempt"] == 2
    )
    tasks = boto3.client("ecs").list_tasks(cluster=recovery_world.ecs.cluster_arn)["taskArns"]
    assert len(tasks) == 1


def test_a_spot_interruption_is_retried_on_demand(
    configure_recovery: Callable[..., ModuleType], recovery_world: RecoveryWorld, wire: RunTaskWire
) -> None:
    recovery = configure_recovery(RETRY_DELAY_SECONDS="0", USE_FARGATE_SPOT="true")
    event = stopped_event(recovery_world, exit_code=143, stop_code="SpotInterruption")
    recovery.lambda_handler(event, LambdaContext())
    recovery.lambda_handler(
        sqs_event(queued(recovery_world.retry_queue_url), recovery_world.retry_queue_url), LambdaContext()
    )
    (request,) = wire.requests
    assert request["launchType"] == "FARGATE" and "capacityProviderStrategy" not in request


def test_the_last_attempt_writes_the_error_manifest_and_queues_the_job(
    recovery: ModuleType, recovery_world: RecoveryWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    event = stopped_event(
        recovery_world, exit_code=None, reason="CannotPullContainerError: not found", attempt=3
    )
    assert recovery.lambda_handler(event, LambdaContext())["action"] == "failed"
    document = manifest()
    assert document is not None
    assert document["status"] == "error" and document["error"]["reason"] == "failed_to_start"
    assert "CannotPullContainerError" in document["error"]["message"]
    assert "after 3 attempt(s)" in document["error"]["message"]
    assert (document["attempts"], document["task_arn"]) == (3, event["detail"]["taskArn"])
    assert document["input"]["version_id"] == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    (failed,) = queued(recovery_world.failed_jobs_queue_url)
    body = json.loads(failed["Body"])
    assert body["job"]["key"] == "videos/big-buck-bunny.mp4" and body["reason"] == "failed_to_start"
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics == {"JobsFailed": 1}


def test_the_workers_own_manifest_for_this_attempt_is_kept(
    recovery: ModuleType, recovery_world: RecoveryWorld
) -> None:
    worker_manifest = {
        "status": "error",
        "input": {"version_id": "096fKKXTRTtl3on89fVO.nfljtsv6qko", "attempt": 3},
        "error": {"exit_code": 1, "reason": "source_unreadable", "message": "archived"},
    }
    boto3.client("s3").put_object(Bucket=BUCKET, Key=MANIFEST_KEY, Body=json.dumps(worker_manifest).encode())
    recovery.lambda_handler(stopped_event(recovery_world, exit_code=1, attempt=3), LambdaContext())
    assert manifest() == worker_manifest
    assert len(queued(recovery_world.failed_jobs_queue_url)) == 1


def test_an_earlier_attempts_manifest_is_replaced(
    recovery: ModuleType, recovery_world: RecoveryWorld
) -> None:
    earlier = {"status": "error", "input": {"version_id": "096fKKXTRTtl3on89fVO.nfljtsv6qko", "attempt": 1}}
    boto3.client("s3").put_object(Bucket=BUCKET, Key=MANIFEST_KEY, Body=json.dumps(earlier).encode())
    recovery.lambda_handler(
        stopped_event(recovery_world, exit_code=137, reason=OOM, memory=8192, attempt=2), LambdaContext()
    )
    document = manifest()
    assert document is not None and document["error"]["reason"] == "out_of_memory"


def test_a_retry_that_cannot_start_is_left_to_sqs_then_given_up(
    recovery: ModuleType, recovery_world: RecoveryWorld, wire: RunTaskWire
) -> None:
    recovery.lambda_handler(stopped_event(recovery_world, exit_code=1), LambdaContext())
    (message,) = queued(recovery_world.retry_queue_url)
    wire.reply(lambda _: (200, {"tasks": [], "failures": [{"reason": "MISSING"}]}))
    for receives, failures in (("1", 1), ("3", 1), ("4", 0)):
        message["Attributes"]["ApproximateReceiveCount"] = receives
        event = sqs_event([message], recovery_world.retry_queue_url)
        try:
            response = recovery.lambda_handler(event, LambdaContext())
        except Exception as error:  # Powertools raises when every record of the batch failed
            assert "All records failed" in str(error)
            response = {"batchItemFailures": [{}]}
        assert len(response["batchItemFailures"]) == failures
    document = manifest()
    assert document is not None and document["error"]["reason"] == "launch_failed"
    assert "MISSING" in document["error"]["message"]


def test_a_task_without_a_job_is_ignored(recovery: ModuleType, recovery_world: RecoveryWorld) -> None:
    event = stopped_event(recovery_world)
    event["detail"]["overrides"] = {"containerOverrides": []}
    assert recovery.lambda_handler(event, LambdaContext())["action"] == "ignored"
