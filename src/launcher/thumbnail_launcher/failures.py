"""A job given up: the error manifest where the user looks for the thumbnail, and a failed-jobs message.

The manifest has the worker's error schema (container/thumbnailer/manifest.py `failure`), with the
stop and the attempts added. One the worker wrote itself for this version and attempt is kept: it
knows more than the task's exit code does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from thumbnail_launcher.jobs import Job
from thumbnail_launcher.naming import manifest_key, read_manifest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

SCHEMA_VERSION = 1  # the worker's manifest schema
MANIFEST_CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class Failure:
    job: Job
    reason: str  # a stable code: the stop kind (out_of_memory, failed_to_start...)
    message: str
    task_arn: str | None
    stop: dict[str, Any] | None = None

    def manifest(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "status": "error",
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "input": {
                "uri": f"s3://{self.job.bucket}/{self.job.key}",
                "bucket": self.job.bucket,
                "key": self.job.key,
                "version_id": self.job.version_id,
                "etag": self.job.etag,
                "size": self.job.size,
                "request_id": self.job.request_id,
                "event_time": self.job.event_time,
                "attempt": self.job.attempt,
            },
            "error": {"exit_code": None, "reason": self.reason, "message": self.message},
            "options": None,
            "thumbnails": [],
            "io": {},
            "written_by": "recovery",
            "attempts": self.job.attempt,
            "task_arn": self.task_arn,
            "stop": self.stop,
        }

    def message_body(self) -> str:
        """The failed-jobs message: enough to replay the job (`job`) and to see why it failed."""
        return json.dumps(
            {
                "job": self.job.contract(),
                "reason": self.reason,
                "message": self.message,
                "task_arn": self.task_arn,
                "stop": self.stop,
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class FailureReporter:
    s3: S3Client
    sqs: SQSClient
    failed_jobs_queue_url: str
    video_prefix: str
    output_prefix: str

    def report(self, failure: Failure) -> bool:
        """Queue the failed job and write its error manifest; False when the worker's own was kept."""
        self.sqs.send_message(QueueUrl=self.failed_jobs_queue_url, MessageBody=failure.message_body())
        key = manifest_key(failure.job.key, self.video_prefix, self.output_prefix)
        if worker_reported(read_manifest(self.s3, failure.job.bucket, key), failure.job):
            return False
        self.s3.put_object(
            Bucket=failure.job.bucket,
            Key=key,
            Body=(json.dumps(failure.manifest(), indent=2, ensure_ascii=False) + "\n").encode(),
            ContentType="application/json",
            CacheControl=MANIFEST_CACHE_CONTROL,
        )
        return True


def worker_reported(manifest: dict[str, Any] | None, job: Job) -> bool:
    """True when `manifest` is the worker's own, for this version of the video, from this attempt or later."""
    if manifest is None or manifest.get("written_by") == "recovery":
        return False
    described = manifest.get("input")
    if not isinstance(described, dict):
        return False
    same_object = (
        described.get("version_id") == job.version_id
        if job.version_id
        else job.etag is not None and str(described.get("etag", "")).strip('"') == job.etag.strip('"')
    )
    attempt = described.get("attempt", 1)
    return same_object and isinstance(attempt, int) and attempt >= job.attempt
