"""The jobs the launcher hands the task (docs/contract.md "The job"), parsed and checked.

A task has one job in THUMBNAIL_JOB, or several, run one after another, in THUMBNAIL_JOBS
(a JSON array of job objects: "Several jobs per task"); never both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from thumbnailer.errors import InvalidOptionsError

JOB_VARIABLE = "THUMBNAIL_JOB"
JOBS_VARIABLE = "THUMBNAIL_JOBS"
_REQUIRED_STRINGS = ("bucket", "key")
_OPTIONAL_STRINGS = ("version_id", "etag", "event_time", "request_id")


@dataclasses.dataclass(frozen=True)
class Job:
    """THUMBNAIL_JOB (docs/contract.md), set by the launcher."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    event_time: str | None = None
    request_id: str | None = None
    # Which task of the job this is (1, then the recovery function's retries) and where the job
    # chain began (event, sweep:<date>, replay:<message id>).
    attempt: int = 1
    origin: str = "event"

    @classmethod
    def parse(cls, raw: str | None) -> Job:
        """The job from its JSON, or InvalidOptionsError naming the field that is wrong."""
        if not raw:
            raise InvalidOptionsError(f"{JOB_VARIABLE} is not set")
        return cls.from_object(_json(raw, JOB_VARIABLE), JOB_VARIABLE)

    @classmethod
    def from_object(cls, data: object, label: str) -> Job:
        """The job from its decoded JSON; `label` names it in errors (`THUMBNAIL_JOBS[2]`)."""
        if not isinstance(data, dict):
            raise InvalidOptionsError(f"{label} must be a JSON object")
        _check_fields(data, label)
        return cls(
            bucket=data["bucket"],
            key=data["key"],
            version_id=data.get("version_id") or None,
            etag=data.get("etag") or None,
            size=data.get("size"),
            event_time=data.get("event_time"),
            request_id=data.get("request_id"),
            attempt=data.get("attempt", 1),
            origin=data.get("origin", "event"),
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def task_jobs(env: Mapping[str, str]) -> list[Job]:
    """The task's jobs: THUMBNAIL_JOB's one, or THUMBNAIL_JOBS's (at least one), never both.

    Any element that is not a valid job fails the whole list, naming its index: the launcher
    wrote it, and running the rest would hide its bug.
    """
    one, several = env.get(JOB_VARIABLE), env.get(JOBS_VARIABLE)
    if one and several:
        raise InvalidOptionsError(f"{JOB_VARIABLE} and {JOBS_VARIABLE} are both set: a task has one of them")
    if not several:
        return [Job.parse(one)]
    data = _json(several, JOBS_VARIABLE)
    if not isinstance(data, list) or not data:
        raise InvalidOptionsError(f"{JOBS_VARIABLE} must be a non-empty JSON array of jobs")
    return [Job.from_object(item, f"{JOBS_VARIABLE}[{index}]") for index, item in enumerate(data)]


def _json(raw: str, label: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidOptionsError(f"{label} is not JSON: {error}") from None


def _check_fields(data: dict[str, Any], label: str) -> None:
    for name in _REQUIRED_STRINGS:
        if not isinstance(data.get(name), str) or not data[name]:
            raise InvalidOptionsError(f"{label} {name} must be a non-empty string")
    for name in _OPTIONAL_STRINGS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise InvalidOptionsError(f"{label} {name} must be a string or null")
    size, attempt, origin = data.get("size"), data.get("attempt", 1), data.get("origin", "event")
    # bool is an int in Python; JSON true is not a size.
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise InvalidOptionsError(f"{label} size {size!r} must be a non-negative integer or null")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise InvalidOptionsError(f"{label} attempt {attempt!r} must be a positive integer")
    if not isinstance(origin, str) or not origin:
        raise InvalidOptionsError(f"{label} origin must be a non-empty string")
