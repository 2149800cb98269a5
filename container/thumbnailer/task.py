"""The Fargate task's entry point: `python -m thumbnailer.task` with THUMBNAIL_JOB in the environment."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from thumbnailer import manifest
from thumbnailer.errors import EXIT_INVALID_OPTIONS, EXIT_OK, InvalidOptionsError
from thumbnailer.inputs import S3Input
from thumbnailer.logs import count_metric, get_logger
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options, with_metadata
from thumbnailer.outcome import execute
from thumbnailer.pipeline import Admit, Input
from thumbnailer.s3_fetcher import open_source
from thumbnailer.settings import Settings
from thumbnailer.sinks import BucketSink
from thumbnailer.task_lifetime import bounded, deadline_seconds


def main(env: Mapping[str, str] = os.environ) -> int:
    logger = get_logger()
    try:
        settings = Settings.from_environment(env)
        job = settings.job
        names = OutputNames.for_key(job.key, settings.video_prefix, settings.output_prefix)
        deadline = deadline_seconds(env)
    except InvalidOptionsError as error:
        # Without a valid job there is no place for an error manifest: the log says why.
        logger.error("invalid task settings", exit_code=EXIT_INVALID_OPTIONS, error=error.message)
        return EXIT_INVALID_OPTIONS
    with bounded(logger, deadline):  # from here on, SIGTERM exits 143 and a hang 124
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
    logger.set_correlation_id(job.request_id)
    logger.append_keys(bucket=job.bucket, key=job.key, version_id=job.version_id, runtime=runtime)
    logger.info("job received", job=job.as_dict())
    token = manifest.RUNTIME.set(runtime)
    try:
        code, document = execute(
            functools.partial(_prepare, settings, logger),
            names,
            BucketSink(job.bucket, settings.output_prefix),
            logger,
            {"job": job.as_dict()},
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
