"""The task's lifetime: SIGTERM and the deadline end it at once, each with an exit code of its own.

ECS sends SIGTERM on StopTask, a deploy or a Fargate Spot interruption, then SIGKILL after the
container's stopTimeout. The worker stops at once instead: outputs are whole S3 objects and the
manifest is written last, so what is left is never partial, and the recovery function retries
the job (exit 143). A hung job (a stalled read, a decoder that never returns) ends at the
deadline with exit 124, from a timer thread: it fires even while the main thread is inside C.
The deadline is the task's, however many jobs it has (THUMBNAIL_JOBS): task.py starts a job
after the first only while BATCH_JOB_RESERVE_SECONDS remain (`Clock.remaining`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType

from aws_lambda_powertools import Logger

from thumbnailer.errors import EXIT_DEADLINE, EXIT_TERMINATED, InvalidOptionsError

DEADLINE_VARIABLE = "THUMBNAIL_DEADLINE_SECONDS"
DEFAULT_DEADLINE_SECONDS = 900.0
# A job of a batch task (THUMBNAIL_JOBS) after the first is started only while this many seconds
# remain before the deadline (docs/contract.md "Several jobs per task"); the launcher sizes its
# batches by the same number: at most deadline // BATCH_JOB_RESERVE_SECONDS jobs per task.
BATCH_JOB_RESERVE_SECONDS = 60.0


class Clock:
    """The time left before the task's deadline, from when `bounded` started it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)


def deadline_seconds(env: Mapping[str, str]) -> float:
    text = env.get(DEADLINE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_DEADLINE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 7 * 24 * 3600:
        raise InvalidOptionsError(f"setting {DEADLINE_VARIABLE} {text!r} must be a number of seconds > 0")
    return seconds


@contextmanager
def bounded(logger: Logger, seconds: float) -> Iterator[Clock]:
    """Within the block, SIGTERM exits 143 and the deadline exits 124, both at once.

    Yields the deadline's clock (`Clock.remaining`).
    """

    def terminate(signum: int, _frame: FrameType | None) -> None:
        _end(logger, EXIT_TERMINATED, "terminated", f"signal {signal.Signals(signum).name}: stopping now")

    def expire() -> None:
        _end(logger, EXIT_DEADLINE, "deadline_exceeded", f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGTERM, terminate)
    clock = Clock(seconds)
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield clock
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)


def _end(logger: Logger, code: int, reason: str, message: str) -> None:
    logger.error("job stopped", exit_code=code, reason=reason, error=message)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no cleanup that could write half of something
