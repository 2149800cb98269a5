"""The job the launcher hands the task in THUMBNAIL_JOB (docs/contract.md "The job"), parsed and checked."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from thumbnailer.errors import InvalidOptionsError

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
        data = _json_object(raw)
        _check_fields(data)
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


def _json_object(raw: str | None) -> dict[str, Any]:
    if not raw:
        raise InvalidOptionsError("THUMBNAIL_JOB is not set")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidOptionsError(f"THUMBNAIL_JOB is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidOptionsError("THUMBNAIL_JOB must be a JSON object")
    return data


def _check_fields(data: dict[str, Any]) -> None:
    for name in _REQUIRED_STRINGS:
        if not isinstance(data.get(name), str) or not data[name]:
            raise InvalidOptionsError(f"THUMBNAIL_JOB {name} must be a non-empty string")
    for name in _OPTIONAL_STRINGS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise InvalidOptionsError(f"THUMBNAIL_JOB {name} must be a string or null")
    size, attempt, origin = data.get("size"), data.get("attempt", 1), data.get("origin", "event")
    # bool is an int in Python; JSON true is not a size.
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise InvalidOptionsError(f"THUMBNAIL_JOB size {size!r} must be a non-negative integer or null")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise InvalidOptionsError(f"THUMBNAIL_JOB attempt {attempt!r} must be a positive integer")
    if not isinstance(origin, str) or not origin:
        raise InvalidOptionsError("THUMBNAIL_JOB origin must be a non-empty string")
