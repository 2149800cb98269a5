"""The RunTask request built for a job: idempotency token, tags, startedBy, capacity."""

from __future__ import annotations

import dataclasses
import json
import re

from aws_lambda_powertools.utilities.data_classes import S3Event

from launcher_support import BUCKET, EVENTS_DIR, load_event
from thumbnail_launcher.drain import BATCH_JOB_RESERVE_SECONDS as LAUNCHER_RESERVE
from thumbnail_launcher.drain import jobs_per_task
from thumbnail_launcher.jobs import Job, parse_event
from thumbnail_launcher.settings import Settings
from thumbnail_launcher.tasks import (
    STARTED_BY,
    Capacity,
    TaskPlan,
    client_token,
    run_task_request,
    tag_value,
)
from thumbnailer.jobs import task_jobs
from thumbnailer.task_lifetime import BATCH_JOB_RESERVE_SECONDS as WORKER_RESERVE

SETTINGS = Settings(
    cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/thumbnails",
    task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/thumbnail-worker:1",
    container_name="worker",
    subnet_ids=("subnet-0a1b2c3d", "subnet-1b2c3d4e"),
    security_group_ids=("sg-0123456789abcdef0",),
    assign_public_ip="DISABLED",
    use_fargate_spot=False,
    video_prefix="videos/",
    video_suffix=".mp4",
    bucket_name=BUCKET,
)


def job_from(event_file: str) -> Job:
    return parse_event(S3Event(load_event(event_file)), video_prefix="videos/", video_suffix=".mp4").jobs[0]


def test_client_token_is_stable_for_a_repeated_event_and_fits_runtask() -> None:
    token = client_token(job_from("put-special-key.json"), Capacity.ON_DEMAND)
    assert token == client_token(job_from("put-special-key.json"), Capacity.ON_DEMAND)
    assert len(token) <= 64
    assert all(33 <= ord(char) <= 126 for char in token)


def test_client_token_differs_for_another_write_of_the_same_key() -> None:
    job = job_from("put.json")
    tokens = {
        client_token(job, Capacity.ON_DEMAND),
        client_token(dataclasses.replace(job, version_id="other-version"), Capacity.ON_DEMAND),
        # In a bucket without versioning, S3's sequencer names the write.
        client_token(
            dataclasses.replace(job, version_id=None, sequencer="0065A2B9C1D2E3F406"), Capacity.ON_DEMAND
        ),
        client_token(dataclasses.replace(job, key="videos/other.mp4"), Capacity.ON_DEMAND),
        client_token(dataclasses.replace(job, bucket="other-bucket"), Capacity.ON_DEMAND),
        # RunTask rejects a known token with other parameters: Spot and on-demand need their own.
        client_token(job, Capacity.SPOT),
    }
    assert len(tokens) == 6


def test_without_sequencer_the_etag_tells_writes_apart() -> None:
    """moto's events carry no sequencer; an unversioned bucket has no version id either."""
    job = dataclasses.replace(job_from("put.json"), sequencer=None, version_id=None)
    same = dataclasses.replace(job)
    rewritten = dataclasses.replace(job, etag="ffffffffffffffffffffffffffffffff")
    assert client_token(job, Capacity.ON_DEMAND) == client_token(same, Capacity.ON_DEMAND)
    assert client_token(job, Capacity.ON_DEMAND) != client_token(rewritten, Capacity.ON_DEMAND)


def test_tag_values_keep_allowed_characters_and_replace_the_others() -> None:
    assert tag_value("videos/Été à Paris/clip + 100% 日本.mp4") == "videos/Été à Paris/clip + 100_ 日本.mp4"
    assert tag_value("videos/a*b?(c)#!.mp4") == "videos/a_b__c___.mp4"
    assert tag_value("aws:reserved") == "_ws:reserved"
    assert tag_value("AWS:reserved") == "_WS:reserved"


def test_long_tag_values_keep_both_ends_within_256_characters() -> None:
    key = "videos/" + "d" * 300 + "/clip.mp4"
    value = tag_value(key)
    assert len(value) == 256
    assert value.startswith("videos/ddd") and value.endswith("/clip.mp4") and "..." in value


def test_on_demand_request() -> None:
    job = job_from("put-special-key.json")
    request = run_task_request(job, SETTINGS, Capacity.ON_DEMAND)
    assert request["launchType"] == "FARGATE"
    assert "capacityProviderStrategy" not in request
    assert request["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-0a1b2c3d", "subnet-1b2c3d4e"],
            "securityGroups": ["sg-0123456789abcdef0"],
            "assignPublicIp": "DISABLED",
        }
    }
    assert request["startedBy"] == STARTED_BY
    assert len(STARTED_BY) <= 36 and re.fullmatch(r"[A-Za-z0-9_/-]+", STARTED_BY)
    tags = {tag["key"]: tag["value"] for tag in request["tags"]}
    assert tags == {
        "thumbnail-creator:bucket": job.bucket,
        "thumbnail-creator:key": "videos/Trips 2024/Été à Paris/clip + extra 100_ 日本.mp4",
        "thumbnail-creator:request-id": job.request_id,
    }


def test_spot_request_uses_a_capacity_provider_strategy_and_no_launch_type() -> None:
    request = run_task_request(job_from("put.json"), SETTINGS, Capacity.SPOT)
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in request


def test_a_batch_task_carries_jobs_the_worker_reads_in_order() -> None:
    """The drain's RunTask (THUMBNAIL_JOBS) and the worker's reading of it (docs/contract.md
    "Several jobs per task")."""
    jobs = []
    for event_file in sorted(EVENTS_DIR.glob("put*.json")):
        jobs += parse_event(
            S3Event(json.loads(event_file.read_text())), video_prefix="videos/", video_suffix=".mp4"
        ).jobs
    assert len(jobs) >= 3
    request = run_task_request(TaskPlan(tuple(jobs)), SETTINGS, Capacity.ON_DEMAND)
    (override,) = request["overrides"]["containerOverrides"]
    environment = {item["name"]: item["value"] for item in override["environment"]}
    assert set(environment) == {"THUMBNAIL_JOBS"}
    assert [job.as_dict() for job in task_jobs(environment)] == [json.loads(job.to_json()) for job in jobs]


def test_the_launcher_sizes_batches_by_the_workers_reserve() -> None:
    """A batch holds at most deadline // reserve jobs; the worker starts a later job only with the
    reserve left before its deadline: one number on both sides."""
    assert LAUNCHER_RESERVE == WORKER_RESERVE
    assert jobs_per_task(10, 900) == 10 and jobs_per_task(10, 300) == 5 and jobs_per_task(10, 60) == 1
