"""The sweep and the replay on moto: what they choose to relaunch, and that a rerun starts nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from launcher_support import BUCKET, RecoveryWorld, RunTaskWire, job_of, load_event
from local_stack import moto_hooks
from thumbnail_launcher.replay import Replayer, ReplayReport
from thumbnail_launcher.settings import RecoverySettings
from thumbnail_launcher.sweep import Sweeper
from thumbnail_launcher.tasks import TaskLauncher


def put_video(key: str) -> str:
    return boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"video bytes")["VersionId"]


def put_manifest(key: str, **document: object) -> None:
    name = "thumbnails/" + key.removeprefix("videos/") + ".json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=name, Body=json.dumps(document).encode())


@pytest.fixture
def sweeper(recovery_world: RecoveryWorld) -> Sweeper:
    return Sweeper(boto3.client("s3"), BUCKET, "videos/", ".mp4", "thumbnails/", min_age=timedelta(0))


@pytest.fixture
def launcher(recovery_world: RecoveryWorld) -> TaskLauncher:
    settings = RecoverySettings.from_env(recovery_world.environment())
    return TaskLauncher(settings.launch, boto3.client("ecs"))


def test_the_sweep_relaunches_only_videos_without_an_up_to_date_manifest(
    sweeper: Sweeper, launcher: TaskLauncher, wire: RunTaskWire
) -> None:
    moto_hooks.honour_run_task_client_token()
    put_video("videos/missing.mp4")
    done = put_video("videos/done.mp4")
    put_manifest("videos/done.mp4", status="ok", input={"version_id": done})
    put_video("videos/raced.mp4")
    put_manifest("videos/raced.mp4", status="ok", input={"version_id": "an-older-version"})
    transient = put_video("videos/transient.mp4")
    put_manifest(
        "videos/transient.mp4",
        status="error",
        input={"version_id": transient},
        error={"reason": "failed_to_start"},
    )
    refused = put_video("videos/refused.mp4")
    put_manifest(
        "videos/refused.mp4",
        status="error",
        input={"version_id": refused},
        error={"reason": "unusable_video"},
    )
    put_video("videos/notes.txt")

    dry = sweeper.run(None)
    assert dry.summary() == {
        "checked": 5,
        "up_to_date": 2,
        "in_flight": 0,
        "to_relaunch": 3,
        "launched": 0,
        "launch_failures": 0,
    }
    assert dict(dry.relaunch) == {
        "videos/missing.mp4": "no manifest",
        "videos/raced.mp4": "the manifest describes another version",
        "videos/transient.mp4": "error manifest with a retryable reason (failed_to_start)",
    }
    assert wire.requests == []

    applied = sweeper.run(launcher)
    assert sorted(applied.launched) == sorted(dict(dry.relaunch))
    jobs = [job_of(request) for request in wire.requests]
    assert {job["origin"] for job in jobs} == {f"sweep:{datetime.now(UTC):%Y-%m-%d}"}
    assert all(job["attempt"] == 1 and job["version_id"] for job in jobs)
    # A second sweep the same day asks for the same tasks: ECS starts none again.
    sweeper.run(launcher)
    tasks = boto3.client("ecs").list_tasks(cluster=launcher.settings.cluster_arn)["taskArns"]
    assert len(tasks) == 3


def test_the_sweep_leaves_recent_uploads_to_their_own_task(recovery_world: RecoveryWorld) -> None:
    put_video("videos/just-uploaded.mp4")
    sweeper = Sweeper(
        boto3.client("s3"), BUCKET, "videos/", ".mp4", "thumbnails/", min_age=timedelta(hours=1)
    )
    report = sweeper.run(None)
    assert (report.in_flight, report.relaunch) == (1, [])
    later = sweeper.run(None, now=datetime.now(UTC) + timedelta(hours=2))
    assert later.relaunch == [("videos/just-uploaded.mp4", "no manifest")]


def test_replay_relaunches_failed_jobs_and_dead_lettered_events_once(
    recovery_world: RecoveryWorld, launcher: TaskLauncher, wire: RunTaskWire
) -> None:
    moto_hooks.honour_run_task_client_token()
    sqs = boto3.client("sqs")
    failed_job = {"job": {**json.loads(_job_json()), "attempt": 3}, "reason": "out_of_memory"}
    sqs.send_message(QueueUrl=recovery_world.failed_jobs_queue_url, MessageBody=json.dumps(failed_job))
    # What Lambda sends an asynchronous invocation's on-failure destination: the event as requestPayload.
    dead_letter = {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": load_event("put-many.json"),
        "responsePayload": {"errorMessage": "LaunchFailuresError"},
    }
    dlq = sqs.create_queue(QueueName="launcher-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(dead_letter))
    sqs.send_message(QueueUrl=dlq, MessageBody="not json at all")
    replayer = Replayer(sqs, "videos/", ".mp4", BUCKET)

    dry = ReplayReport()
    replayer.run(recovery_world.failed_jobs_queue_url, None, dry)
    replayer.run(dlq, None, dry)
    assert (dry.messages, len(dry.jobs), dry.launched) == (3, 1 + 3, [])
    assert len(dry.unreadable) == 1 and wire.requests == []

    applied = ReplayReport()
    replayer.run(recovery_world.failed_jobs_queue_url, launcher, applied)
    replayer.run(dlq, launcher, applied)
    assert len(applied.launched) == 4
    jobs = [job_of(request) for request in wire.requests]
    assert all(job["attempt"] == 1 and job["origin"].startswith("replay:") for job in jobs)
    # What started is gone from the queues; the unreadable message stays for a person to look at.
    again = ReplayReport()
    replayer.run(recovery_world.failed_jobs_queue_url, launcher, again)
    replayer.run(dlq, launcher, again)
    assert (again.messages, len(again.unreadable)) == (1, 1)


def _job_json() -> str:
    return json.dumps(
        {
            "bucket": BUCKET,
            "key": "videos/big-buck-bunny.mp4",
            "version_id": "v1",
            "etag": "d41d8cd98f00b204e9800998ecf8427e",
            "size": 11,
            "event_time": "2025-11-26T15:40:12.345Z",
            "request_id": "C3D13FE58DE4C810",
            "attempt": 1,
            "origin": "event",
        }
    )
