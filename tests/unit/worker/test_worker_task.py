"""The task path against moto over real HTTP: job -> thumbnails and manifest in the bucket."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from devkit.paths import REPO_ROOT
from local_stack.emulator import Emulator
from tests.unit.worker.synthetic import Clip, read_barcode
from thumbnailer import task

KEY = "videos/dir/my clip+1 é.mp4"
STEM = "thumbnails/dir/my clip+1 é.mp4"


def _upload(
    s3: Any, bucket: str, clip_path: Path, key: str = KEY, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    put = s3.put_object(Bucket=bucket, Key=key, Body=clip_path.read_bytes(), Metadata=metadata or {})
    return {"etag": put["ETag"], "version_id": put.get("VersionId"), "size": clip_path.stat().st_size}


def _job_env(bucket: str, uploaded: dict[str, Any], key: str = KEY, **settings: str) -> dict[str, str]:
    job = {
        "bucket": bucket,
        "key": key,
        "version_id": uploaded["version_id"],
        "etag": uploaded["etag"].strip('"'),
        "size": uploaded["size"],
        "event_time": "2026-01-01T00:00:00.000Z",
        "request_id": "REQ-" + uuid.uuid4().hex[:8],
    }
    return {
        "THUMBNAIL_JOB": json.dumps(job),
        "VIDEO_PREFIX": "videos/",
        "OUTPUT_PREFIX": "thumbnails/",
        **settings,
    }


def _keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _manifest(s3: Any, bucket: str) -> dict[str, Any]:
    response = s3.get_object(Bucket=bucket, Key=f"{STEM}.json")
    assert response["ContentType"] == "application/json"
    return json.loads(response["Body"].read())


def test_task_writes_thumbnail_and_manifest(s3: Any, bucket: str, clips: dict[str, Any]) -> None:
    clip: Clip = clips["moov_end"]
    uploaded = _upload(s3, bucket, clip.path)
    assert task.main(_job_env(bucket, uploaded, THUMBNAIL_AT="1", THUMBNAIL_FORMAT="jpeg")) == 0

    assert _keys(s3, bucket) == {KEY, f"{STEM}.jpg", f"{STEM}.json"}
    thumbnail = s3.get_object(Bucket=bucket, Key=f"{STEM}.jpg")
    assert thumbnail["ContentType"] == "image/jpeg"
    assert thumbnail["CacheControl"].startswith("public")
    assert thumbnail["Metadata"]["source-version-id"] == uploaded["version_id"]
    assert thumbnail["Metadata"]["source-etag"] == uploaded["etag"].strip('"')
    assert read_barcode(Image.open(io.BytesIO(thumbnail["Body"].read()))) == 30

    manifest = _manifest(s3, bucket)
    assert manifest["status"] == "ok"
    assert manifest["input"]["version_id"] == uploaded["version_id"]
    assert manifest["input"]["key"] == KEY
    assert manifest["thumbnails"][0]["name"] == f"{STEM}.jpg"
    assert manifest["frame"]["time"] == pytest.approx(1.0)
    assert manifest["io"]["requests"] > 0 and 0 < manifest["io"]["bytes_read"] <= uploaded["size"]
    # The source is untouched.
    head = s3.head_object(Bucket=bucket, Key=KEY)
    assert head["ETag"] == uploaded["etag"] and head["VersionId"] == uploaded["version_id"]


def test_metadata_overrides_the_defaults(s3: Any, bucket: str, clips: dict[str, Any]) -> None:
    clip: Clip = clips["moov_front"]
    meta = {"thumbnail-at": "50%", "thumbnail-format": "webp", "thumbnail-widths": "96,48"}
    uploaded = _upload(s3, bucket, clip.path, metadata=meta)
    assert task.main(_job_env(bucket, uploaded, THUMBNAIL_AT="0", THUMBNAIL_FORMAT="png")) == 0
    assert _keys(s3, bucket) == {KEY, f"{STEM}.48w.webp", f"{STEM}.96w.webp", f"{STEM}.json"}
    for width in (48, 96):
        got = s3.get_object(Bucket=bucket, Key=f"{STEM}.{width}w.webp")
        assert got["ContentType"] == "image/webp"
        image = Image.open(io.BytesIO(got["Body"].read()))
        assert image.format == "WEBP" and image.width == width
    manifest = _manifest(s3, bucket)
    assert manifest["options"] == {"at": "50%", "format": "webp", "widths": [48, 96]}


def test_an_older_version_finishing_last_writes_nothing_over_the_newer_one(
    s3: Any, bucket: str, clips: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two uploads of one key, two jobs: whichever finishes last, the newer version's thumbnail stays."""
    first = _upload(s3, bucket, clips["moov_end"].path)
    second = _upload(s3, bucket, clips["black_intro"].path)  # a newer version at the same key
    assert task.main(_job_env(bucket, second, THUMBNAIL_AT="2", THUMBNAIL_FORMAT="png")) == 0
    newer = s3.get_object(Bucket=bucket, Key=f"{STEM}.png")["Body"].read()
    capsys.readouterr()
    assert task.main(_job_env(bucket, first, THUMBNAIL_AT="2", THUMBNAIL_FORMAT="png")) == 0
    assert s3.get_object(Bucket=bucket, Key=f"{STEM}.png")["Body"].read() == newer
    assert _manifest(s3, bucket)["input"]["version_id"] == second["version_id"]
    # Counted: an EMF line CloudWatch turns into the Superseded metric.
    metric_lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"_aws"' in line]
    assert [line["Superseded"] for line in metric_lines] == [[1.0]]


def test_an_older_versions_error_does_not_replace_the_newer_versions_manifest(
    s3: Any, bucket: str, clips: dict[str, Any]
) -> None:
    first = _upload(s3, bucket, clips["moov_end"].path, metadata={"thumbnail-at": "-5"})
    second = _upload(s3, bucket, clips["black_intro"].path)
    assert task.main(_job_env(bucket, second, THUMBNAIL_AT="2")) == 0
    assert task.main(_job_env(bucket, first)) == 0
    manifest = _manifest(s3, bucket)
    assert manifest["status"] == "ok" and manifest["input"]["version_id"] == second["version_id"]


def test_invalid_metadata_exits_2_with_an_error_manifest_only(
    s3: Any, bucket: str, clips: dict[str, Any]
) -> None:
    uploaded = _upload(s3, bucket, clips["moov_end"].path, metadata={"thumbnail-at": "-5"})
    assert task.main(_job_env(bucket, uploaded)) == 2
    assert _keys(s3, bucket) == {KEY, f"{STEM}.json"}
    manifest = _manifest(s3, bucket)
    assert manifest["status"] == "error" and manifest["thumbnails"] == []
    assert manifest["error"]["exit_code"] == 2 and manifest["error"]["reason"] == "invalid_options"
    assert "thumbnail-at" in manifest["error"]["message"] and "'-5'" in manifest["error"]["message"]


def test_invalid_stack_default_exits_2_with_an_error_manifest_naming_it(
    s3: Any, bucket: str, clips: dict[str, Any]
) -> None:
    # The template does not constrain DefaultThumbnailAt: the user must find why in the bucket too.
    uploaded = _upload(s3, bucket, clips["moov_end"].path)
    assert task.main(_job_env(bucket, uploaded, THUMBNAIL_AT="5s")) == 2
    assert _keys(s3, bucket) == {KEY, f"{STEM}.json"}
    error = _manifest(s3, bucket)["error"]
    assert error["reason"] == "invalid_options"
    assert "setting THUMBNAIL_AT" in error["message"] and "'5s'" in error["message"]


def test_unusable_video_exits_3_with_an_error_manifest(s3: Any, bucket: str, tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(4000))
    uploaded = _upload(s3, bucket, fake)
    assert task.main(_job_env(bucket, uploaded)) == 3
    assert _keys(s3, bucket) == {KEY, f"{STEM}.json"}
    manifest = _manifest(s3, bucket)
    assert manifest["error"]["exit_code"] == 3 and manifest["error"]["reason"] in {
        "not_a_video",
        "no_video_stream",
    }
    assert s3.head_object(Bucket=bucket, Key=KEY)["ETag"] == uploaded["etag"]


def test_a_key_too_long_for_its_thumbnails_exits_2_with_only_the_error_manifest(
    s3: Any, bucket: str, clips: dict[str, Any]
) -> None:
    # moto accepts keys of any length; S3 refuses keys over 1024 bytes, so the worker checks first.
    key = "videos/" + "k" * 1000 + ".mp4"  # the manifest's key is 1020 bytes, a .320w.webp's 1025
    uploaded = _upload(s3, bucket, clips["moov_end"].path, key=key)
    assert (
        task.main(_job_env(bucket, uploaded, key=key, THUMBNAIL_FORMAT="webp", THUMBNAIL_WIDTHS="320,64"))
        == 2
    )
    manifest_key = "thumbnails/" + key.removeprefix("videos/") + ".json"
    assert _keys(s3, bucket) == {key, manifest_key}
    error = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())["error"]
    assert error["reason"] == "invalid_options" and "1024 bytes" in error["message"]


def test_missing_source_exits_3(s3: Any, bucket: str) -> None:
    env = _job_env(bucket, {"etag": '"x"', "version_id": None, "size": 1})
    assert task.main(env) == 3
    assert _manifest(s3, bucket)["error"]["reason"] == "source_not_found"


@pytest.mark.parametrize(
    "job", ["", "not json", "[]", '{"bucket": "b"}', '{"bucket": "b", "key": "videos/a.mp4", "size": -1}']
)
def test_invalid_job_exits_2(s3: Any, job: str) -> None:
    assert task.main({"THUMBNAIL_JOB": job}) == 2


def test_task_and_cli_as_real_processes(
    s3: Any, bucket: str, clips: dict[str, Any], worker_emulator: Emulator, tmp_path: Path
) -> None:
    uploaded = _upload(s3, bucket, clips["moov_end"].path)
    env = {**os.environ, **worker_emulator.environment, **_job_env(bucket, uploaded, THUMBNAIL_AT="auto")}
    result = subprocess.run(
        [sys.executable, "-m", "thumbnailer.task"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert _keys(s3, bucket) == {KEY, f"{STEM}.jpg", f"{STEM}.json"}
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    request_id = json.loads(env["THUMBNAIL_JOB"])["request_id"]
    assert logs and all(entry.get("correlation_id") == request_id for entry in logs)
    assert {"open", "seek", "decode", "encode", "upload"} <= {entry.get("stage") for entry in logs}

    cli = subprocess.run(
        [sys.executable, "-m", "thumbnailer", f"s3://{bucket}/{KEY}", "--out", str(tmp_path), "--at", "2.5"],
        env={**os.environ, **worker_emulator.environment},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    manifest = json.loads(cli.stdout)
    assert manifest["io"]["requests"] >= 1
    assert read_barcode(Image.open(tmp_path / "my clip+1 é.mp4.jpg")) == 75


def test_an_object_other_than_the_events_is_read_with_a_manifest_warning(
    s3: Any, bucket: str, clips: dict[str, Any]
) -> None:
    """An event without a version id whose ETag is not the object's (a sample event, an overwrite)."""
    uploaded = _upload(s3, bucket, clips["moov_end"].path)
    env = _job_env(bucket, {**uploaded, "version_id": None, "etag": "0123456789abcdef0123456789abcdef"})
    assert task.main(env) == 0
    warnings = _manifest(s3, bucket)["warnings"]
    assert any("0123456789abcdef0123456789abcdef" in w and uploaded["etag"].strip('"') in w for w in warnings)


@pytest.fixture
def s3(task_s3: Any) -> Any:
    return task_s3


@pytest.fixture
def bucket(task_bucket: str) -> str:
    return task_bucket
