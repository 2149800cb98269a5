"""The Lambda handler end to end against moto's ECS: every event file, what the task carries,
metrics and logs, and the failure paths (throttling, Spot capacity, a failing record, a bad cluster)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest

from launcher_support import (
    EVENTS_DIR,
    REGION,
    EcsWorld,
    LambdaContext,
    Reply,
    RunTaskWire,
    emitted,
    job_of,
    load_event,
)
from local_stack import moto_hooks
from thumbnail_launcher.batch import LaunchFailuresError
from thumbnail_launcher.jobs import InvalidEventError
from thumbnail_launcher.settings import SettingsError
from thumbnail_launcher.tasks import REPEAT_TOLERANCE

# Every event file, with the keys it must launch (decoded) and how many records it must skip.
EXPECTED = {
    "put.json": (["videos/big-buck-bunny.mp4"], 0),
    "put-special-key.json": (["videos/Trips 2024/Été à Paris/clip + extra 100% 日本.mp4"], 0),
    "put-many.json": (
        ["videos/lectures/week-01.mp4", "videos/lectures/week-02.mp4", "videos/lectures/week 03 (final).mp4"],
        0,
    ),
    "complete-multipart.json": (["videos/4k/drone-footage.mp4"], 0),
    "put-uppercase-suffix.json": (["videos/phone/IMG_0042.MP4"], 0),
    "put-outside-prefix.json": ([], 1),
    "put-other-suffix.json": ([], 1),
    "test-event.json": ([], 1),
}
SPOT_SHORTAGE = (
    "Capacity is unavailable at this time. Please try again later or in a different availability zone"
)


def describe(world: EcsWorld, task_arns: list[str]) -> list[dict[str, Any]]:
    if not task_arns:
        return []
    ecs = boto3.client("ecs", region_name=REGION)
    tasks: list[dict[str, Any]] = ecs.describe_tasks(
        cluster=world.cluster_arn, tasks=task_arns, include=["TAGS"]
    )["tasks"]
    return tasks


def all_tasks(world: EcsWorld) -> list[dict[str, Any]]:
    ecs = boto3.client("ecs", region_name=REGION)
    return describe(world, ecs.list_tasks(cluster=world.cluster_arn)["taskArns"])


def test_every_event_file_is_covered() -> None:
    assert {path.name for path in EVENTS_DIR.glob("*.json") if not path.name.startswith("task-")} == set(
        EXPECTED
    )


@pytest.mark.parametrize("event_file", sorted(EXPECTED))
def test_event_file_launches_one_task_per_video(
    event_file: str,
    app: ModuleType,
    wire: RunTaskWire,
    ecs_world: EcsWorld,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys, skipped = EXPECTED[event_file]
    event = load_event(event_file)

    summary = app.lambda_handler(event, LambdaContext())

    assert summary["tasks_started"] == len(keys)
    assert summary["records_skipped"] == skipped
    assert summary["launch_failures"] == 0
    tasks = describe(ecs_world, summary["task_arns"])
    assert [job_of(task)["key"] for task in tasks] == keys
    assert wire.job_keys() == keys
    records = {record["responseElements"]["x-amz-request-id"]: record for record in event.get("Records", [])}
    for task in tasks:
        job = job_of(task)
        record = records[job["request_id"]]
        assert job == {
            "bucket": record["s3"]["bucket"]["name"],
            "key": job["key"],
            "version_id": record["s3"]["object"]["versionId"],
            "etag": record["s3"]["object"]["eTag"],
            "size": record["s3"]["object"]["size"],
            "event_time": record["eventTime"],
            "request_id": record["responseElements"]["x-amz-request-id"],
            "attempt": 1,
            "origin": "event",
        }
        assert task["overrides"]["containerOverrides"][0]["name"] == "worker"
        assert task["launchType"] == "FARGATE"
        assert task["taskDefinitionArn"] == ecs_world.task_definition_arn
        assert task["startedBy"] == "thumbnail-launcher"
        (attachment,) = task["attachments"]
        details = {item["name"]: item["value"] for item in attachment["details"]}
        assert details["subnetId"] in ecs_world.subnet_ids
        tags = {tag["key"]: tag["value"] for tag in task["tags"]}
        assert tags["thumbnail-creator:bucket"] == job["bucket"]
        assert tags["thumbnail-creator:request-id"] == job["request_id"]
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics == {
        "TasksStarted": len(keys),
        "RecordsSkipped": skipped,
        "LaunchFailures": 0,
        "RepeatedEvents": 0,
        "JobsQueued": 0,
        "RecordsFromOtherBuckets": 0,
    }


def test_each_record_logs_under_its_own_request_id(
    app: ModuleType, wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("put-many.json")
    app.lambda_handler(event, LambdaContext())
    _, logs = emitted(capsys.readouterr().out)
    started = [log for log in logs if log["message"] == "Task started"]
    expected = [
        (record["responseElements"]["x-amz-request-id"], key)
        for record, key in zip(event["Records"], EXPECTED["put-many.json"][0], strict=True)
    ]
    assert [(log["correlation_id"], log["s3_key"]) for log in started] == expected
    assert all(log["function_request_id"] == LambdaContext().aws_request_id for log in started)


def test_repeated_event_starts_nothing_and_names_the_first_task(
    app: ModuleType, wire: RunTaskWire, ecs_world: EcsWorld
) -> None:
    event = load_event("put.json")
    first = app.lambda_handler(event, LambdaContext())
    second = app.lambda_handler(event, LambdaContext())
    # The job ledger knows the job started: no second RunTask at all.
    (request,) = wire.requests
    assert len(request["clientToken"]) <= 64
    assert (second["tasks_started"], second["repeated_events"]) == (0, 1)
    assert second["task_arns"] == first["task_arns"]
    assert len(all_tasks(ecs_world)) == 1


def test_another_write_of_the_same_key_sends_another_token(app: ModuleType, wire: RunTaskWire) -> None:
    event = load_event("put.json")
    app.lambda_handler(event, LambdaContext())
    obj = event["Records"][0]["s3"]["object"]
    obj["versionId"], obj["sequencer"] = "a-newer-version-id", "0065A2B9C1D2E3F4FF"
    app.lambda_handler(event, LambdaContext())
    first, second = wire.requests
    assert first["clientToken"] != second["clientToken"]


def test_conflict_on_a_known_token_counts_as_already_started(
    app: ModuleType, wire: RunTaskWire, ecs_world: EcsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("put.json")
    first = app.lambda_handler(event, LambdaContext())
    capsys.readouterr()
    # As if the first delivery had stopped between RunTask and recording its task in the ledger:
    # the next delivery repeats that RunTask, with the same token.
    ledger = ecs_world.environment()["JOB_LEDGER_TABLE"]
    dynamodb = boto3.client("dynamodb")
    (item,) = dynamodb.scan(TableName=ledger)["Items"]
    dynamodb.update_item(
        TableName=ledger,
        Key={"job_id": item["job_id"]},
        UpdateExpression="SET job_state = :starting REMOVE task_arn",
        ExpressionAttributeValues={":starting": {"S": "starting"}},
    )
    # What AWS answers when a token it has seen arrives with other parameters; moto never does.
    wire.reply(
        lambda _: (
            400,
            {"__type": "ConflictException", "message": "token in use", "resourceIds": first["task_arns"]},
        )
    )
    second = app.lambda_handler(event, LambdaContext())
    assert second == {
        "tasks_started": 0,
        "repeated_events": 1,
        "records_skipped": 1,
        "records_from_other_buckets": 0,
        "launch_failures": 0,
        "jobs_queued": 0,
        "task_arns": first["task_arns"],
    }
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics == {
        "TasksStarted": 0,
        "RecordsSkipped": 1,
        "LaunchFailures": 0,
        "RepeatedEvents": 1,
        "JobsQueued": 0,
        "RecordsFromOtherBuckets": 0,
    }
    assert any(log["message"].startswith("Task already started") for log in logs)
    assert len(all_tasks(ecs_world)) == 1


def test_spot_enabled_runs_on_fargate_spot(
    configure: Callable[..., ModuleType], wire: RunTaskWire, ecs_world: EcsWorld
) -> None:
    app = configure(USE_FARGATE_SPOT="true")
    summary = app.lambda_handler(load_event("put.json"), LambdaContext())
    (task,) = describe(ecs_world, summary["task_arns"])
    assert task["capacityProviderName"] == "FARGATE_SPOT"
    (request,) = wire.requests
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in request


def test_spot_without_capacity_falls_back_to_on_demand(
    configure: Callable[..., ModuleType],
    wire: RunTaskWire,
    ecs_world: EcsWorld,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = configure(USE_FARGATE_SPOT="true")

    # moto's RunTask always answers `failures: []`; this is the answer ECS gives when Spot has
    # no capacity, delivered at the HTTP layer so that botocore parses it as it would AWS's.
    def no_spot(request: dict[str, Any]) -> Reply | None:
        if "capacityProviderStrategy" not in request:
            return None
        return 200, {"tasks": [], "failures": [{"arn": ecs_world.cluster_arn, "reason": SPOT_SHORTAGE}]}

    wire.reply(no_spot)
    summary = app.lambda_handler(load_event("put.json"), LambdaContext())

    (task,) = describe(ecs_world, summary["task_arns"])
    assert task["launchType"] == "FARGATE"
    spot, on_demand = wire.requests
    assert "capacityProviderStrategy" in spot and on_demand["launchType"] == "FARGATE"
    assert spot["clientToken"] != on_demand["clientToken"]
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics == {
        "TasksStarted": 1,
        "RecordsSkipped": 0,
        "LaunchFailures": 0,
        "RepeatedEvents": 0,
        "JobsQueued": 0,
        "RecordsFromOtherBuckets": 0,
    }
    (fallback,) = [log for log in logs if log["level"] == "WARNING"]
    assert fallback["fell_back_to_on_demand"] is True and fallback["s3_key"] == "videos/big-buck-bunny.mp4"


def test_throttling_is_retried_by_botocore(
    app: ModuleType, wire: RunTaskWire, ecs_world: EcsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    throttled: list[int] = []

    def throttle_twice(_: dict[str, Any]) -> Reply | None:
        if len(throttled) == 2:
            return None
        throttled.append(1)
        return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}

    wire.reply(throttle_twice)
    summary = app.lambda_handler(load_event("put.json"), LambdaContext())

    assert summary["tasks_started"] == 1
    assert len(wire.requests) == 3
    assert len({json.dumps(request, sort_keys=True) for request in wire.requests}) == 1
    assert len(all_tasks(ecs_world)) == 1
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["TasksStarted"] == 1 and metrics["LaunchFailures"] == 0


def test_a_failing_record_does_not_hide_the_others(
    app: ModuleType, wire: RunTaskWire, ecs_world: EcsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    denied_key = "videos/lectures/week-02.mp4"

    def deny_one(request: dict[str, Any]) -> Reply | None:
        if job_of(request)["key"] != denied_key:
            return None
        return 400, {"__type": "AccessDeniedException", "message": "not authorized to perform ecs:RunTask"}

    wire.reply(deny_one)
    event = load_event("put-many.json")
    with pytest.raises(LaunchFailuresError, match=f"1 record\\(s\\) could not be launched: {denied_key}: "):
        app.lambda_handler(event, LambdaContext())

    launched = sorted(job_of(task)["key"] for task in all_tasks(ecs_world))
    assert launched == ["videos/lectures/week 03 (final).mp4", "videos/lectures/week-01.mp4"]
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics == {
        "TasksStarted": 2,
        "RecordsSkipped": 0,
        "LaunchFailures": 1,
        "RepeatedEvents": 0,
        "JobsQueued": 0,
        "RecordsFromOtherBuckets": 0,
    }
    (failure,) = [log for log in logs if log["level"] == "ERROR"]
    assert failure["s3_key"] == denied_key
    assert failure["correlation_id"] == event["Records"][1]["responseElements"]["x-amz-request-id"]
    assert "AccessDeniedException" in failure["reason"]


def test_unknown_cluster_fails_every_record_and_raises(
    configure: Callable[..., ModuleType], wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    app = configure(CLUSTER_ARN="arn:aws:ecs:us-east-1:123456789012:cluster/no-such-cluster")
    with pytest.raises(LaunchFailuresError, match="ClusterNotFoundException") as raised:
        app.lambda_handler(load_event("put-many.json"), LambdaContext())
    assert str(raised.value).startswith("3 record(s) could not be launched")
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics == {
        "TasksStarted": 0,
        "RecordsSkipped": 0,
        "LaunchFailures": 3,
        "RepeatedEvents": 0,
        "JobsQueued": 0,
        "RecordsFromOtherBuckets": 0,
    }
    assert sorted(log["s3_key"] for log in logs if log["level"] == "ERROR") == sorted(
        EXPECTED["put-many.json"][0]
    )


def test_unreadable_record_is_a_failure_after_the_others_launched(
    app: ModuleType, wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("put-many.json")
    del event["Records"][0]["s3"]["object"]["key"]
    with pytest.raises(LaunchFailuresError, match="record #0: malformed S3 record"):
        app.lambda_handler(event, LambdaContext())
    assert len(wire.requests) == 2
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics == {
        "TasksStarted": 2,
        "RecordsSkipped": 0,
        "LaunchFailures": 1,
        "RepeatedEvents": 0,
        "JobsQueued": 0,
        "RecordsFromOtherBuckets": 0,
    }


def test_payload_that_is_not_an_s3_event_is_rejected_and_counted(
    app: ModuleType, wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidEventError):
        app.lambda_handler({"hello": "world"}, LambdaContext())
    assert wire.requests == []
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics == {"LaunchFailures": 1}


def test_bad_settings_fail_naming_the_variable(
    configure: Callable[..., ModuleType], wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    app = configure(USE_FARGATE_SPOT="sometimes", SUBNET_IDS="")
    with pytest.raises(SettingsError, match="USE_FARGATE_SPOT must be 'true' or 'false'") as raised:
        app.lambda_handler(load_event("put.json"), LambdaContext())
    assert "SUBNET_IDS is missing or empty" in str(raised.value)
    assert wire.requests == []
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics == {"LaunchFailures": 1}
    assert [log["exception_name"] for log in logs] == ["SettingsError"]


def test_a_repeated_event_answered_with_the_same_task_counts_as_repeated_not_started(
    app: ModuleType, ecs_world: EcsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """ECS answers a known client token with the task it started then, as moto_hooks makes moto do."""
    moto_hooks.honour_run_task_client_token()
    event = load_event("put.json")
    first = app.lambda_handler(event, LambdaContext())
    capsys.readouterr()
    time.sleep(REPEAT_TOLERANCE.total_seconds() + 0.5)
    second = app.lambda_handler(event, LambdaContext())
    assert second["task_arns"] == first["task_arns"]
    assert (second["tasks_started"], second["repeated_events"]) == (0, 1)
    metrics, _ = emitted(capsys.readouterr().out)
    assert (metrics["TasksStarted"], metrics["RepeatedEvents"]) == (0, 1)
    assert len(all_tasks(ecs_world)) == 1


def test_records_of_another_bucket_are_skipped_and_counted(
    app: ModuleType, wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("put.json")
    event["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket"
    summary = app.lambda_handler(event, LambdaContext())
    assert (summary["tasks_started"], summary["records_from_other_buckets"]) == (0, 1)
    assert wire.requests == []
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["RecordsFromOtherBuckets"] == 1
    assert any("is not this stack's" in str(log.get("reason")) for log in logs)


def test_too_little_time_left_is_a_counted_failure_not_a_timeout(
    app: ModuleType, wire: RunTaskWire, capsys: pytest.CaptureFixture[str]
) -> None:
    """A RunTask call that might outlast the invocation is not started: the event is retried."""
    with pytest.raises(LaunchFailuresError, match="left in this invocation"):
        app.lambda_handler(load_event("put-many.json"), LambdaContext(remaining_ms=30_000))
    assert wire.requests == []
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["LaunchFailures"] == len(load_event("put-many.json")["Records"])
