"""S3 event records -> thumbnail jobs (docs/contract.md "The job"), and the records left aside with why."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

TEST_EVENT = "s3:TestEvent"
# Where a job chain began: an S3 event, a sweep or a replay. Part of the RunTask client token, so
# a relaunch by the sweep never collides with the tokens of the event's own attempts.
ORIGIN_EVENT = "event"
MAX_ORIGIN_LENGTH = 128


class InvalidEventError(ValueError):
    """The payload is neither an S3 notification nor an S3 test event."""


@dataclass(frozen=True)
class Job:
    bucket: str
    key: str  # URL-decoded
    version_id: str | None
    etag: str | None
    size: int | None
    event_time: str
    request_id: str | None
    # Not part of the job JSON: S3's per-key event order, used to tell two writes of one key apart.
    sequencer: str | None = None
    # 1 for the first task of a job; the recovery function starts attempt 2, 3... (docs/contract.md).
    attempt: int = 1
    origin: str = ORIGIN_EVENT

    def contract(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
            "size": self.size,
            "event_time": self.event_time,
            "request_id": self.request_id,
            "attempt": self.attempt,
            "origin": self.origin,
        }

    @classmethod
    def from_contract(cls, data: Any) -> Job:
        """A job read back from THUMBNAIL_JOB (a stopped task's overrides, a queued retry).

        Raises ValueError naming the first field that does not follow docs/contract.md.
        """
        if not isinstance(data, dict):
            raise ValueError("the job is not a JSON object")
        for name in ("version_id", "etag", "request_id"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"job field {name} must be a string or null")
        attempt, size = data.get("attempt", 1), data.get("size")
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise ValueError(f"job field attempt must be a positive integer, got {attempt!r}")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ValueError(f"job field size must be a non-negative integer or null, got {size!r}")
        return cls(
            bucket=_non_empty(data.get("bucket"), "bucket"),
            key=_non_empty(data.get("key"), "key"),
            version_id=data.get("version_id") or None,
            etag=data.get("etag") or None,
            size=size,
            event_time=_non_empty(data.get("event_time"), "event_time"),
            request_id=data.get("request_id") or None,
            attempt=attempt,
            origin=_origin(data.get("origin", ORIGIN_EVENT)),
        )

    def identity(self) -> str:
        """This attempt of this job: the same write of the same object, chain (origin) and attempt.

        The base of the RunTask client token (tasks.py) and of the job ledger's key (ledger.py), so
        it must read the same after the job's JSON round trip (queues, task overrides): the version
        id names the write in the stack's versioned bucket; without one, S3's sequencer (not in the
        JSON: a first delivery only) or the ETag stands in.
        """
        write = self.version_id or self.sequencer or f"etag:{self.etag}"
        return "\0".join((self.bucket, self.key, write, self.origin, str(self.attempt)))

    def next_attempt(self) -> Job:
        return dataclasses.replace(self, attempt=self.attempt + 1)

    def relaunched(self, origin: str) -> Job:
        """The same video as a new job chain (sweep, replay): attempt 1 under another origin."""
        return dataclasses.replace(self, attempt=1, origin=_origin(origin), sequencer=None)

    def to_json(self) -> str:
        """The THUMBNAIL_JOB value; deterministic, so a repeated RunTask carries identical parameters."""
        return json.dumps(self.contract(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class SkippedRecord:
    """A well-formed record that is deliberately not a job (test event, other prefix or suffix...)."""

    key: str | None
    reason: str
    request_id: str | None = None
    # From a bucket other than the stack's: SAM's permission names the account, not the bucket.
    other_bucket: bool = False


@dataclass(frozen=True)
class InvalidRecord:
    """A record that cannot be read: a failure, not a skip."""

    index: int
    reason: str


@dataclass(frozen=True)
class ParsedEvent:
    jobs: tuple[Job, ...]
    skipped: tuple[SkippedRecord, ...]
    invalid: tuple[InvalidRecord, ...]


def parse_event(
    event: S3Event, *, video_prefix: str, video_suffix: str, bucket_name: str | None = None
) -> ParsedEvent:
    """Every record of the event, sorted into jobs, skipped records and invalid records.

    With `bucket_name`, records of any other bucket are skipped (marked `other_bucket`).
    """
    if event.get("Event") == TEST_EVENT:
        # Sent once when the notification is configured; it has no Records.
        return ParsedEvent((), (SkippedRecord(None, TEST_EVENT, event.get("RequestId")),), ())
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("not an S3 event notification: no 'Records' list and not an s3:TestEvent")

    jobs: list[Job] = []
    skipped: list[SkippedRecord] = []
    invalid: list[InvalidRecord] = []
    for index, record in enumerate(event.records):
        try:
            job = _job_from_record(record)
            reason = _skip_reason(record.event_name, job.key, video_prefix, video_suffix)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            invalid.append(InvalidRecord(index, f"malformed S3 record: {type(error).__name__}: {error}"))
            continue
        if bucket_name is not None and job.bucket != bucket_name:
            skipped.append(
                SkippedRecord(job.key, f"bucket {job.bucket!r} is not this stack's", job.request_id, True)
            )
        elif reason:
            skipped.append(SkippedRecord(job.key, reason, job.request_id))
        else:
            jobs.append(job)
    return ParsedEvent(tuple(jobs), tuple(skipped), tuple(invalid))


def _job_from_record(record: S3EventRecord) -> Job:
    if record.event_source != "aws:s3":
        raise ValueError(f"eventSource is {record.event_source!r}, not 'aws:s3'")
    obj = record.s3.get_object
    # Optional fields: moto's records, for one, carry no sequencer.
    size = obj.get("size")
    response_elements = record.get("responseElements") or {}
    return Job(
        bucket=_non_empty(record.s3.bucket.name, "s3.bucket.name"),
        # S3 URL-encodes keys in notifications (spaces as '+', '+' as '%2B').
        key=_non_empty(unquote_plus(_non_empty(obj.key, "s3.object.key")), "s3.object.key"),
        version_id=obj.version_id or None,
        etag=obj.etag or None,
        size=None if size is None else int(size),
        event_time=_non_empty(record.event_time, "eventTime"),
        request_id=response_elements.get("x-amz-request-id") or None,
        sequencer=obj.get("sequencer") or None,
    )


def _skip_reason(event_name: str, key: str, video_prefix: str, video_suffix: str) -> str | None:
    if not event_name.startswith("ObjectCreated:"):
        return f"event {event_name!r} is not an object creation"
    if not key.startswith(video_prefix):
        return f"key is outside the prefix {video_prefix!r}"
    if not key.lower().endswith(video_suffix.lower()):
        return f"key does not end with {video_suffix!r}"
    return None


def _origin(value: Any) -> str:
    text = _non_empty(value, "origin")
    if len(text) > MAX_ORIGIN_LENGTH:
        raise ValueError(f"job field origin is longer than {MAX_ORIGIN_LENGTH} characters")
    return text


def _non_empty(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} is missing or empty")
    return value
