"""The job the launcher writes is the job the worker reads (docs/contract.md, "The job")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event

from devkit.paths import REPO_ROOT
from thumbnail_launcher.jobs import parse_event
from thumbnailer.task import Job as WorkerJob

EVENTS = sorted((REPO_ROOT / "src" / "events").glob("*.json"))


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
