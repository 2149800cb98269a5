"""Classified failures: each maps to one exit code and one reason a user can act on."""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INVALID_OPTIONS = 2
EXIT_UNUSABLE_VIDEO = 3


class WorkerError(Exception):
    """A failure the worker understands; `reason` is a stable machine-readable code."""

    exit_code: ClassVar[int] = EXIT_UNEXPECTED
    default_reason: ClassVar[str] = "internal_error"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason


class InvalidOptions(WorkerError):
    """A time spec, format, width, job or setting that cannot be used: nothing is rendered."""

    exit_code = EXIT_INVALID_OPTIONS
    default_reason = "invalid_options"


class UnusableVideo(WorkerError):
    """The input cannot give a thumbnail: no video stream, nothing decodable, truncated, not a video."""

    exit_code = EXIT_UNUSABLE_VIDEO
    default_reason = "unusable_video"
