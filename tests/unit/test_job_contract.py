"""The job the launcher writes is the job the worker reads (docs/contract.md, "The job")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event

from devkit.paths import REPO_ROOT
from thumbnail_launcher.jobs import parse_event
from thumbnailer.jobs import Job as WorkerJob

# S3 notifications; task-*.json are the recovery function's ECS events.
EVENTS = sorted(p for p in (REPO_ROOT / "src" / "events").glob("*.json") if not p.name.startswith("task-"))


def _contract_fields() -> set[str]:
    text = (REPO_ROOT / "docs" / "contract.md").read_text()
    section = text.split("## The job", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r'"([a-z_]+)":', section))


@pytest.mark.parametrize("event_file", EVENTS, ids=lambda path: path.name)
def test_every_launched_job_parses_in_the_worker_unchanged(event_file: Path) -> None:
    event = json.loads(event_file.read_text())
    jobs = parse_event(S3Event(event), video_prefix="videos/", video_suffix=".mp4").jobs
    for job in jobs:
        sent = json.loads(job.to_json())
        assert set(sent) == _contract_fields()
        assert WorkerJob.parse(job.to_json()).as_dict() == sent


def test_the_sample_events_launch_some_jobs() -> None:
    launched = [
        job
        for path in EVENTS
        for job in parse_event(
            S3Event(json.loads(path.read_text())), video_prefix="videos/", video_suffix=".mp4"
        ).jobs
    ]
    assert len(launched) >= 5
    assert {"bucket", "key"} <= _contract_fields()


@pytest.mark.parametrize(
    "key",
    [
        "videos/a.mp4",
        "videos/Trips 2024/Été à Paris/clip + extra 100% 日本.mp4",
        "videos/x/y/z.MP4",
        "other/b.mp4",
    ],
)
def test_the_recovery_function_writes_error_manifests_where_the_worker_writes_manifests(key: str) -> None:
    """The recovery function has no worker code: its manifest key must be the worker's."""
    from thumbnail_launcher.naming import manifest_key
    from thumbnailer.naming import OutputNames

    assert (
        manifest_key(key, "videos/", "thumbnails/")
        == OutputNames.for_key(key, "videos/", "thumbnails/").manifest()
    )


def test_a_retry_or_a_sweep_job_parses_in_the_worker_with_its_attempt_and_origin() -> None:
    event = json.loads((REPO_ROOT / "src" / "events" / "put.json").read_text())
    (job,) = parse_event(S3Event(event), video_prefix="videos/", video_suffix=".mp4").jobs
    for later in (job.next_attempt().next_attempt(), job.relaunched("sweep:2026-11-27")):
        assert WorkerJob.parse(later.to_json()).as_dict() == json.loads(later.to_json())
