"""The worker's failures, one family: each class carries its exit code and a reason a user can act on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INVALID_OPTIONS = 2
EXIT_UNUSABLE_VIDEO = 3
# The task's own ends (task_lifetime.py): as `timeout(1)` and as 128 + SIGTERM.
EXIT_DEADLINE = 124
EXIT_TERMINATED = 143
# Worst first: the deadline (a batch task's jobs left unstarted: the recovery requeues them), a
# failure nobody expected (retrying may help), a video that cannot give a thumbnail, a bad
# option, success. A code not listed counts as worse than all.
EXIT_SEVERITY = (EXIT_DEADLINE, EXIT_UNEXPECTED, EXIT_UNUSABLE_VIDEO, EXIT_INVALID_OPTIONS, EXIT_OK)


def worst_exit_code(codes: Iterable[int]) -> int:
    """The exit status of several jobs or inputs: 124 > 1 > 3 > 2 > 0 (EXIT_SEVERITY); 0 when none.

    The CLI's status for several videos, and a batch task's (THUMBNAIL_JOBS) for several jobs.
    """
    rank = {code: len(EXIT_SEVERITY) - i for i, code in enumerate(EXIT_SEVERITY)}
    return max(codes, key=lambda code: rank.get(code, len(EXIT_SEVERITY) + 1), default=EXIT_OK)


class WorkerError(Exception):
    """A failure the worker understands; `reason` is a stable machine-readable code.

    `reason` is the class's default; an instance may name a more precise one (UnusableVideoError:
    `not_a_video`, `corrupt`...). `writes_manifest` False: the job ends without an error manifest.
    """

    exit_code: ClassVar[int] = EXIT_UNEXPECTED
    reason: str = "internal_error"
    writes_manifest: ClassVar[bool] = True

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class InvalidOptionsError(WorkerError):
    """A time spec, format, width, job or setting that cannot be used: nothing is rendered."""

    exit_code = EXIT_INVALID_OPTIONS
    reason = "invalid_options"


class MissingCredentialsError(WorkerError):
    """No AWS credentials to read an s3:// source with: a setting to fix, not a failure to retry."""

    exit_code = EXIT_INVALID_OPTIONS
    reason = "no_credentials"


class UnusableVideoError(WorkerError):
    """The input cannot give a thumbnail: no video stream, nothing decodable, truncated, not a video."""

    exit_code = EXIT_UNUSABLE_VIDEO
    reason = "unusable_video"


class SourceNotFoundError(WorkerError):
    """The source object (or the version asked for) does not exist or may not be read."""

    exit_code = EXIT_UNUSABLE_VIDEO
    reason = "source_not_found"


class SourceUnreadableError(WorkerError):
    """The source exists but its bytes cannot be read as HEAD described them (archived, changed)."""

    exit_code = EXIT_UNEXPECTED
    reason = "source_unreadable"


class SourceChangedError(SourceUnreadableError):
    """The source was overwritten while being read: its ETag or size no longer match what HEAD saw.

    No error manifest: a newer version is on its way (its own event and task), its outputs are its own.
    """

    reason = "source_changed"
    writes_manifest = False


class S3ReadError(WorkerError):
    """S3 kept failing to deliver a range (network, cut-off bodies) after every retry.

    Not the source's fault, so not a SourceUnreadableError: running the task again may succeed.
    """

    exit_code = EXIT_UNEXPECTED
    reason = "s3_read_failed"


class SupersededError(WorkerError):
    """A newer version of the video (or its deletion) came while this one was processed.

    Nothing is written and the job ends well: the newer version's own task writes its outputs,
    and an older version's must never overwrite them.
    """

    exit_code = EXIT_OK
    reason = "superseded"
    writes_manifest = False


class LimitExceededError(UnusableVideoError):
    """The input asks for more than the worker allows (README "Limits"): refused before allocating it."""

    reason = "limits_exceeded"
