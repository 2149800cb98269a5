"""JSON-lines logs (Powertools Logger, which works outside Lambda) and per-stage timings."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger

SERVICE = "thumbnail-worker"


def service_name() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE)


@functools.cache
def get_logger() -> Logger:
    """The worker's logger, made once per process (Powertools loggers of one service share state).

    Logs go to stderr: the CLI prints the manifest on stdout; awslogs collects both in the task.
    Library modules log through `Logger(service=service_name(), child=True)`: their records go
    out through this logger's handler, as JSON with its keys (the correlation id).
    """
    return Logger(
        service=service_name(),
        level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
        logger_handler=logging.StreamHandler(sys.stderr),
    )


@contextmanager
def job_keys(logger: Logger, correlation_id: str | None, **keys: Any) -> Iterator[None]:
    """The job's correlation id and keys on every line logged in the block, none of them after it.

    Whatever was appended inside (by the job or the code it calls) is removed and any value it
    replaced is put back: job k of a batch task, or a warm function's previous event, lends
    nothing to the next one.
    """
    before = dict(logger.get_current_keys())
    logger.set_correlation_id(correlation_id)
    logger.append_keys(**keys)
    try:
        yield
    finally:
        logger.remove_keys([name for name in logger.get_current_keys() if name not in before])
        logger.append_keys(**before)


class StageTimer:
    """Times the stages of a job (open, seek, decode, encode, upload) and logs each one."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        self.timings_ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and log it when it ends."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = self._add(name, started)
            self.logger.info("stage finished", stage=name, duration_ms=elapsed)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Add to a stage's total without a log line (seeks and decodes repeat); see `log_total`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._add(name, started)

    def log_total(self, *names: str) -> None:
        for name in names:
            if name in self.timings_ms:
                self.logger.info("stage finished", stage=name, duration_ms=self.timings_ms[name])

    def _add(self, name: str, started: float) -> float:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        self.timings_ms[name] = round(self.timings_ms.get(name, 0.0) + elapsed, 1)
        return elapsed


def count_metric(name: str, namespace: str = "ThumbnailCreator") -> None:
    """One CloudWatch metric as an EMF line on stderr (CloudWatch extracts it from the task's log).

    stderr, not stdout: the CLI prints the manifest on stdout.
    """
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace=namespace, service=service_name())
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    print(json.dumps(metrics.serialize_metric_set()), file=sys.stderr, flush=True)
    metrics.clear_metrics()
