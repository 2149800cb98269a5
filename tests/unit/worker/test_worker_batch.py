"""Several jobs per task (THUMBNAIL_JOBS) against moto over real HTTP: each job as a lone one runs.

The task runs as ECS runs it where its logs or exit code matter (`python -m thumbnailer.task`
in its own process); in-process where a test needs the worker's S3 client behind the fault proxy.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from PIL import Image

from devkit.paths import REPO_ROOT
from local_stack.emulator import Emulator
from tests.unit.worker.fault_proxy import FaultProxy
from tests.unit.worker.synthetic import Clip, read_barcode
from thumbnailer import s3_fetcher, task
from thumbnailer.errors import EXIT_DEADLINE, EXIT_INVALID_OPTIONS, EXIT_UNEXPECTED, EXIT_UNUSABLE_VIDEO
from thumbnailer.task_lifetime import BATCH_JOB_RESERVE_SECONDS

SETTINGS = {"VIDEO_PREFIX": "videos/", "OUTPUT_PREFIX": "thumbnails/", "THUMBNAIL_FORMAT": "png"}


def _job(
    s3: Any, bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    """Upload `body` at `key`; the job the launcher would send for it (a retry's attempt: 2)."""
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})
    return {
        "bucket": bucket,
        "key": key,
        "version_id": put["VersionId"],
        "etag": put["ETag"].strip('"'),
        "size": len(body),
        "event_time": "2026-01-01T00:00:00.000Z",
        "request_id": "REQ-" + uuid.uuid4().hex[:8],
        "attempt": 2,
        "origin": "event",
    }


def _run_task(emulator: Emulator, **variables: str) -> tuple[int, list[dict[str, Any]]]:
    """`python -m thumbnailer.task` as the container runs it: its exit code and its JSON log lines."""
    result = subprocess.run(
        [sys.executable, "-m", "thumbnailer.task"],
        env={**os.environ, **emulator.environment, **variables},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith('{"level"')]
    return result.returncode, logs


def _manifest(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    name = "thumbnails/" + key.removeprefix("videos/") + ".json"
    return json.loads(s3.get_object(Bucket=bucket, Key=name)["Body"].read())


def _keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _frame_index(s3: Any, bucket: str, name: str) -> int:
    return read_barcode(Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=name)["Body"].read())))


def test_a_batch_runs_every_job_and_exits_with_the_worst_code(
    s3: Any, bucket: str, clips: dict[str, Clip], worker_emulator: Emulator
) -> None:
    """Three jobs, the middle one not a video: three manifests, two thumbnails, exit 3."""
    clip = clips["moov_end"].path.read_bytes()
    jobs = [
        _job(s3, bucket, "videos/a.mp4", clip),
        _job(s3, bucket, "videos/b.mp4", b"\x00\x00\x00\x18ftypisom" + os.urandom(4000)),
        # Its own options from its own metadata: the others keep the task's default.
        _job(s3, bucket, "videos/c.mp4", clip, metadata={"thumbnail-at": "2", "thumbnail-format": "jpeg"}),
    ]
    code, logs = _run_task(worker_emulator, THUMBNAIL_JOBS=json.dumps(jobs), THUMBNAIL_AT="1", **SETTINGS)

    assert code == EXIT_UNUSABLE_VIDEO
    assert _keys(s3, bucket) == {
        "videos/a.mp4",
        "videos/b.mp4",
        "videos/c.mp4",
        "thumbnails/a.mp4.png",
        "thumbnails/a.mp4.json",
        "thumbnails/b.mp4.json",
        "thumbnails/c.mp4.jpg",
        "thumbnails/c.mp4.json",
    }
    assert _frame_index(s3, bucket, "thumbnails/a.mp4.png") == 30  # 1 s at 30 fps
    assert _frame_index(s3, bucket, "thumbnails/c.mp4.jpg") == 60  # its metadata's 2 s
    manifests = {job["key"]: _manifest(s3, bucket, job["key"]) for job in jobs}
    for job in jobs:
        described = manifests[job["key"]]["input"]
        assert (described["key"], described["version_id"]) == (job["key"], job["version_id"])
        assert (described["attempt"], described["request_id"]) == (2, job["request_id"])
    assert [manifests[job["key"]]["status"] for job in jobs] == ["ok", "error", "ok"]
    assert manifests["videos/b.mp4"]["error"]["exit_code"] == EXIT_UNUSABLE_VIDEO
    assert manifests["videos/c.mp4"]["options"]["at"] == "2"

    # Each job's lines carry its own correlation id and key, and no other job's.
    for job in jobs:
        lines = [entry for entry in logs if entry.get("key") == job["key"]]
        assert lines and all(entry.get("correlation_id") == job["request_id"] for entry in lines)
    finished = [entry for entry in logs if entry["message"] == "batch finished"]
    assert len(finished) == 1 and finished[0]["exit_codes"] == [0, 3, 0]
    assert "key" not in finished[0] and "correlation_id" not in finished[0]


def test_jobs_without_time_before_the_deadline_are_not_started_and_the_task_exits_124(
    s3: Any, bucket: str, clips: dict[str, Clip], worker_emulator: Emulator
) -> None:
    """A deadline of exactly the reserve: the first job runs; after it, less than the reserve is left."""
    clip = clips["moov_front"].path.read_bytes()
    jobs = [_job(s3, bucket, f"videos/{name}.mp4", clip) for name in ("first", "second", "third")]
    code, logs = _run_task(
        worker_emulator,
        THUMBNAIL_JOBS=json.dumps(jobs),
        THUMBNAIL_DEADLINE_SECONDS=str(BATCH_JOB_RESERVE_SECONDS),
        THUMBNAIL_AT="1",
        **SETTINGS,
    )

    assert code == EXIT_DEADLINE
    outputs = _keys(s3, bucket) - {job["key"] for job in jobs}
    assert outputs == {"thumbnails/first.mp4.png", "thumbnails/first.mp4.json"}
    assert _manifest(s3, bucket, "videos/first.mp4")["status"] == "ok"
    assert _frame_index(s3, bucket, "thumbnails/first.mp4.png") == 30
    not_started = [entry for entry in logs if entry["message"] == "job not started: deadline near"]
    assert [entry["key"] for entry in not_started] == ["videos/second.mp4", "videos/third.mp4"]
    assert all(entry["attempt"] == 2 and "correlation_id" not in entry for entry in not_started)


def test_an_unexpected_failure_leaves_an_error_manifest_for_the_recovery_and_the_batch_goes_on(
    s3: Any,
    bucket: str,
    clips: dict[str, Clip],
    fault_proxy: FaultProxy,
    proxied_s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first job's reads keep failing (exit 1) before anything of the source is known: its
    error manifest still names the job's version, ETag and attempt (what the recovery reads)."""
    monkeypatch.setattr(s3_fetcher, "BODY_RETRY_BACKOFF_SECONDS", 0.01)
    clip = clips["moov_end"].path.read_bytes()
    jobs = [_job(s3, bucket, f"videos/{name}.mp4", clip) for name in ("broken", "fine")]
    fault_proxy.get_faults[:] = ["truncate"] * s3_fetcher.BODY_READ_ATTEMPTS  # the first job's GETs

    env = {"THUMBNAIL_JOBS": json.dumps(jobs), "THUMBNAIL_AT": "1", **SETTINGS}
    assert task.main(env) == EXIT_UNEXPECTED

    broken = _manifest(s3, bucket, "videos/broken.mp4")
    assert broken["status"] == "error" and broken["runtime"] == "fargate"
    assert broken["error"]["exit_code"] == EXIT_UNEXPECTED and broken["error"]["reason"] == "s3_read_failed"
    described, job = broken["input"], jobs[0]
    assert (described["version_id"], described["etag"], described["attempt"]) == (
        job["version_id"],
        job["etag"],
        job["attempt"],
    )
    assert described["key"] == job["key"] and described["uri"] == f"s3://{bucket}/{job['key']}"
    assert _manifest(s3, bucket, "videos/fine.mp4")["status"] == "ok"
    assert _frame_index(s3, bucket, "thumbnails/fine.mp4.png") == 30


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"THUMBNAIL_JOB": json.dumps({"bucket": "b", "key": "videos/a.mp4"})}, "are both set"),
        ({}, "THUMBNAIL_JOBS[1] key must be a non-empty string"),
        (
            {"THUMBNAIL_JOBS": json.dumps([{"bucket": "b", "key": "videos/a.mp4"}, 7])},
            "THUMBNAIL_JOBS[1] must be",
        ),
        ({"THUMBNAIL_JOBS": "[]"}, "non-empty JSON array"),
        ({"THUMBNAIL_JOBS": '{"bucket": "b"}'}, "non-empty JSON array"),
    ],
)
def test_a_bad_batch_exits_2_naming_what_is_wrong(
    worker_emulator: Emulator, variables: dict[str, str], named: str
) -> None:
    jobs = [{"bucket": "b", "key": "videos/a.mp4"}, {"bucket": "b", "key": ""}]
    code, logs = _run_task(worker_emulator, **{"THUMBNAIL_JOBS": json.dumps(jobs), **variables, **SETTINGS})
    assert code == EXIT_INVALID_OPTIONS
    assert [entry["message"] for entry in logs] == ["invalid task settings"]
    assert named in logs[0]["error"]


@pytest.fixture
def s3(task_s3: Any) -> Any:
    return task_s3


@pytest.fixture
def bucket(task_bucket: str) -> str:
    return task_bucket
