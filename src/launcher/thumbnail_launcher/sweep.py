"""The sweep: every video under the prefix against its manifest; relaunch what has no up-to-date one.

It catches what no event covered: uploads while the stack had no image, notifications that never
arrived, an older version's task finishing after a newer one's, and jobs given up for reasons that
may have cleared since. Dry run unless told to apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from thumbnail_launcher.batch import Launcher
from thumbnail_launcher.jobs import Job
from thumbnail_launcher.naming import manifest_key, read_manifest
from thumbnail_launcher.tasks import LaunchError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Error reasons worth another try: the worker's transient ones and the recovery function's
# (stops.StopKind). out_of_memory is not among them: it was already retried at the largest size.
RETRYABLE_REASONS = frozenset(
    {
        "internal_error",
        "s3_read_failed",
        "failed_to_start",
        "launch_failed",
        "spot_interruption",
        "killed",
        "terminated",
        "worker_error",
        "deadline_exceeded",
        "unexpected_exit",
    }
)
# A video younger than this may still be in flight: its task (and retries) are not done yet.
DEFAULT_MIN_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class Video:
    """The current version of one video, as ListObjectVersions gives it."""

    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int
    last_modified: datetime


@dataclass
class SweepReport:
    checked: int = 0
    up_to_date: int = 0
    in_flight: int = 0
    relaunch: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    launched: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "up_to_date": self.up_to_date,
            "in_flight": self.in_flight,
            "to_relaunch": len(self.relaunch),
            "launched": len(self.launched),
            "launch_failures": len(self.failed),
        }


def why_relaunch(video: Video, manifest: dict[str, Any] | None) -> str | None:
    """Why this video needs a new job, or None when its manifest is up to date or final."""
    if manifest is None:
        return "no manifest"
    described = manifest.get("input")
    if not isinstance(described, dict):
        described = {}
    if video.version_id:
        current = described.get("version_id") == video.version_id
    else:
        current = str(described.get("etag") or "").strip('"') == video.etag.strip('"')
    if not current:
        return "the manifest describes another version"
    error = manifest.get("error") if manifest.get("status") == "error" else None
    reason = error.get("reason") if isinstance(error, dict) else None
    if reason in RETRYABLE_REASONS:
        return f"error manifest with a retryable reason ({reason})"
    return None


@dataclass
class Sweeper:
    s3: S3Client
    bucket: str
    video_prefix: str
    video_suffix: str
    output_prefix: str
    min_age: timedelta = DEFAULT_MIN_AGE

    def plan(self, now: datetime | None = None) -> tuple[SweepReport, list[Video]]:
        now = now or datetime.now(UTC)
        report, chosen = SweepReport(), []
        for video in self.videos():
            report.checked += 1
            if now - video.last_modified < self.min_age:
                report.in_flight += 1
                continue
            why = why_relaunch(video, self.manifest(video))
            if why is None:
                report.up_to_date += 1
            else:
                report.relaunch.append((video.key, why))
                chosen.append(video)
        return report, chosen

    def run(self, launcher: Launcher | None, now: datetime | None = None) -> SweepReport:
        """Plan, and with a launcher, start a job for each video chosen."""
        now = now or datetime.now(UTC)
        report, chosen = self.plan(now)
        if launcher is None:
            return report
        origin = f"sweep:{now:%Y-%m-%d}"  # one relaunch a day per version, whatever reruns
        for video in chosen:
            try:
                launcher.launch(job_for(video, origin))
            except LaunchError as error:
                report.failed.append((video.key, error.reason))
            else:
                report.launched.append(video.key)
        return report

    def videos(self) -> Iterator[Video]:
        pages = self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=self.video_prefix
        )
        for page in pages:
            for version in page.get("Versions", []):
                key = version["Key"]
                if version.get("IsLatest") and key.lower().endswith(self.video_suffix.lower()):
                    yield Video(
                        bucket=self.bucket,
                        key=key,
                        version_id=None
                        if version.get("VersionId") in (None, "null")
                        else version["VersionId"],
                        etag=version["ETag"],
                        size=int(version["Size"]),
                        last_modified=version["LastModified"],
                    )

    def manifest(self, video: Video) -> dict[str, Any] | None:
        return read_manifest(
            self.s3, self.bucket, manifest_key(video.key, self.video_prefix, self.output_prefix)
        )


def _version(value: str | None) -> str | None:
    """An unversioned bucket lists version "null"."""
    return None if value in (None, "null") else value


def job_for(video: Video, origin: str) -> Job:
    return Job(
        bucket=video.bucket,
        key=video.key,
        version_id=video.version_id,
        etag=video.etag.strip('"'),
        size=video.size,
        event_time=video.last_modified.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        request_id=None,
        origin=origin,
    )
