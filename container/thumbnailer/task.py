"""The Fargate task's entry point: `python -m thumbnailer.task` with THUMBNAIL_JOB in the environment."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from thumbnailer.errors import EXIT_INVALID_OPTIONS, InvalidOptionsError
from thumbnailer.inputs import S3Input
from thumbnailer.logs import get_logger
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options, from_environment, with_metadata
from thumbnailer.pipeline import Input
from thumbnailer.runner import execute
from thumbnailer.s3_fetcher import head_source
from thumbnailer.sinks import BucketSink


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

    @classmethod
    def parse(cls, raw: str | None) -> Job:
        if not raw:
            raise InvalidOptionsError("THUMBNAIL_JOB is not set")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise InvalidOptionsError(f"THUMBNAIL_JOB is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise InvalidOptionsError("THUMBNAIL_JOB must be a JSON object")
        for name in ("bucket", "key"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise InvalidOptionsError(f"THUMBNAIL_JOB {name} must be a non-empty string")
        for name in ("version_id", "etag", "event_time", "request_id"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise InvalidOptionsError(f"THUMBNAIL_JOB {name} must be a string or null")
        size = data.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidOptionsError(f"THUMBNAIL_JOB size {size!r} must be a non-negative integer or null")
        return cls(
            bucket=data["bucket"],
            key=data["key"],
            version_id=data.get("version_id") or None,
            etag=data.get("etag") or None,
            size=size,
            event_time=data.get("event_time"),
            request_id=data.get("request_id"),
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The task's environment, parsed once; a bad value fails fast naming it.

    A bad option default (THUMBNAIL_AT ...) is kept, not raised: the job is valid, so it is
    reported like bad metadata, in an error manifest where the user looks for the thumbnail.
    """

    job: Job
    defaults: Options | InvalidOptionsError
    video_prefix: str
    output_prefix: str

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Settings:
        output_prefix = env.get("OUTPUT_PREFIX", "thumbnails/") or ""
        video_prefix = env.get("VIDEO_PREFIX", "videos/") or ""
        if not output_prefix or output_prefix == video_prefix:
            raise InvalidOptionsError(
                f"setting OUTPUT_PREFIX {output_prefix!r} must be set and differ from VIDEO_PREFIX"
            )
        job = Job.parse(env.get("THUMBNAIL_JOB"))
        try:
            defaults: Options | InvalidOptionsError = from_environment(env)
        except InvalidOptionsError as error:
            defaults = error
        return cls(job=job, defaults=defaults, video_prefix=video_prefix, output_prefix=output_prefix)


def main(env: Mapping[str, str] = os.environ) -> int:
    logger = get_logger()
    try:
        settings = Settings.from_environment(env)
        job = settings.job
        names = OutputNames.for_key(job.key, settings.video_prefix, settings.output_prefix)
    except InvalidOptionsError as error:
        # Without a valid job there is no place for an error manifest: the log says why.
        logger.error("invalid task settings", exit_code=EXIT_INVALID_OPTIONS, error=error.message)
        return EXIT_INVALID_OPTIONS
    logger.set_correlation_id(job.request_id)
    logger.append_keys(bucket=job.bucket, key=job.key, version_id=job.version_id)
    logger.info("job received", job=job.as_dict())

    def prepare() -> tuple[Input, Options]:
        if isinstance(settings.defaults, InvalidOptionsError):
            raise settings.defaults
        source = head_source(job.bucket, job.key, job.version_id)
        if job.etag and source.etag and job.etag.strip('"') != source.etag.strip('"') and not job.version_id:
            logger.warning(
                "the object changed since its event; reading the current one", head_etag=source.etag
            )
        return S3Input(source, job.as_dict()), with_metadata(settings.defaults, source.metadata)

    code, _ = execute(
        prepare, names, BucketSink(job.bucket, settings.output_prefix), logger, {"job": job.as_dict()}
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
