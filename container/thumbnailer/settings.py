"""The task's environment, parsed once into a frozen object; a bad value fails fast, naming it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from thumbnailer.errors import InvalidOptionsError
from thumbnailer.jobs import Job
from thumbnailer.options import Options, from_environment


@dataclasses.dataclass(frozen=True)
class Settings:
    """The job, the option defaults and the prefixes (docs/contract.md "Worker environment").

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
