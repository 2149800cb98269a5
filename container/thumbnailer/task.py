"""The Fargate task's entry point: `python -m thumbnailer.task` with THUMBNAIL_JOB or THUMBNAIL_JOBS.

THUMBNAIL_JOBS (docs/contract.md "Several jobs per task") runs its jobs one after another in
this process, each as a lone job runs (its outputs, its manifest or error manifest, its log
keys), under one deadline for the task. A job after the first starts only while
BATCH_JOB_RESERVE_SECONDS remain; those left unstarted are logged and the task exits 124, the
deadline's code, so that the recovery starts them again. Otherwise the task exits with the worst
of its jobs' codes (errors.worst_exit_code).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from thumbnailer import manifest
from thumbnailer.errors import (
    EXIT_DEADLINE,
    EXIT_INVALID_OPTIONS,
    EXIT_OK,
    InvalidOptionsError,
    worst_exit_code,
)
from thumbnailer.inputs import S3Input
from thumbnailer.logs import count_metric, get_logger, job_keys
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options, with_metadata
from thumbnailer.outcome import execute
from thumbnailer.pipeline import Admit, Input
from thumbnailer.s3_fetcher import open_source
from thumbnailer.settings import Settings
from thumbnailer.sinks import BucketSink
from thumbnailer.task_lifetime import BATCH_JOB_RESERVE_SECONDS, Clock, bounded, deadline_seconds


def main(env: Mapping[str, str] = os.environ) -> int:
    logger = get_logger()
    try:
        jobs = Settings.for_task(env)
        deadline = deadline_seconds(env)
    except InvalidOptionsError as error:
        # Without a valid job there is no place for an error manifest: the log says why.
        logger.error("invalid task settings", exit_code=EXIT_INVALID_OPTIONS, error=error.message)
        return EXIT_INVALID_OPTIONS
    if len(jobs) > 1:
        logger.info("batch received", jobs=len(jobs), keys=[settings.job.key for settings in jobs])
    with bounded(logger, deadline) as clock:  # from here on, SIGTERM exits 143 and a hang 124
        return run_jobs(jobs, logger, clock)


def run_jobs(jobs: list[Settings], logger: Logger, clock: Clock) -> int:
    """Each job in turn; the worst exit code, or 124 when a job was left unstarted for lack of time."""
    codes: list[int] = []
    for index, settings in enumerate(jobs):
        if index and clock.remaining() < BATCH_JOB_RESERVE_SECONDS:
            for left in jobs[index:]:
                logger.warning(
                    "job not started: deadline near",
                    key=left.job.key,
                    version_id=left.job.version_id,
                    attempt=left.job.attempt,
                    remaining_seconds=round(clock.remaining(), 1),
                    reserve_seconds=BATCH_JOB_RESERVE_SECONDS,
                )
            codes.append(EXIT_DEADLINE)
            break
        codes.append(_run_one(settings, logger))
    code = worst_exit_code(codes)
    if len(jobs) > 1:
        logger.info("batch finished", exit_code=code, exit_codes=codes)
    return code


def _run_one(settings: Settings, logger: Logger) -> int:
    job = settings.job
    try:
        names = OutputNames.for_key(job.key, settings.video_prefix, settings.output_prefix)
    except InvalidOptionsError as error:
        # No name for an error manifest either: the log says why.
        logger.error("invalid job", key=job.key, exit_code=EXIT_INVALID_OPTIONS, error=error.message)
        return EXIT_INVALID_OPTIONS
    code, _ = run_job(settings, names, logger, runtime="fargate")
    return code


def run_job(
    settings: Settings,
    names: OutputNames,
    logger: Logger,
    *,
    runtime: str,
    admit: Admit | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """One job, whichever entry point runs it (this task, or the worker function: lambda_handler.py).

    Returns the exit code and the manifest written (None when none was).
    """
    job = settings.job
    keys = {"bucket": job.bucket, "key": job.key, "version_id": job.version_id, "runtime": runtime}
    with job_keys(logger, job.request_id, **keys):
        logger.info("job received", job=job.as_dict())
        token = manifest.RUNTIME.set(runtime)
        try:
            code, document = execute(
                functools.partial(_prepare, settings, logger),
                names,
                BucketSink(job.bucket, settings.output_prefix),
                logger,
                # Before the source is read (it failed), the error manifest's `input` is the job's:
                # its version, ETag and attempt where the recovery looks for them.
                {"uri": f"s3://{job.bucket}/{job.key}", **job.as_dict()},
                admit=admit,
            )
        finally:
            manifest.RUNTIME.reset(token)
        if code == EXIT_OK and document is None:
            count_metric("Superseded")
    return code, document


def _prepare(settings: Settings, logger: Logger) -> tuple[Input, Options]:
    """Open the job's version (one ranged GET), then the options its metadata gives (outcome.execute)."""
    job = settings.job
    if isinstance(settings.defaults, InvalidOptionsError):
        raise settings.defaults
    opened = open_source(job.bucket, job.key, job.version_id)
    source = opened.source
    source_input = S3Input(opened, job.as_dict())
    named, current = (job.etag or "").strip('"'), (source.etag or "").strip('"')
    if named and current and named != current and not job.version_id:
        logger.warning("the object changed since its event; reading the current one", head_etag=source.etag)
        source_input.warnings.append(
            f"the object changed since its event: the event named ETag {named}, "
            f"this thumbnail is of the current object (ETag {current})"
        )
    try:
        return source_input, with_metadata(settings.defaults, source.metadata)
    except InvalidOptionsError:
        source_input.check_current()  # an older version's bad metadata is no longer anyone's concern
        raise


if __name__ == "__main__":
    from thumbnailer.startup import skip_optional_imports

    skip_optional_imports()
    sys.exit(main())
