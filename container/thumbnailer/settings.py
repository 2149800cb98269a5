"""The task's environment, parsed once into a frozen object; a bad value fails fast, naming it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from thumbnailer.errors import InvalidOptionsError
from thumbnailer.jobs import JOB_VARIABLE, Job, task_jobs
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
        """THUMBNAIL_JOB's job with the environment's options (the worker function's event is put there)."""
        return cls._with_jobs(env, lambda: [Job.parse(env.get(JOB_VARIABLE))])[0]

    @classmethod
    def for_task(cls, env: Mapping[str, str]) -> list[Settings]:
        """One Settings per job of the task (THUMBNAIL_JOB or THUMBNAIL_JOBS: jobs.task_jobs), in order."""
        return cls._with_jobs(env, lambda: task_jobs(env))

    @classmethod
    def _with_jobs(cls, env: Mapping[str, str], jobs: Callable[[], list[Job]]) -> list[Settings]:
        output_prefix = env.get("OUTPUT_PREFIX", "thumbnails/") or ""
        video_prefix = env.get("VIDEO_PREFIX", "videos/") or ""
        if not output_prefix or output_prefix == video_prefix:
            raise InvalidOptionsError(
                f"setting OUTPUT_PREFIX {output_prefix!r} must be set and differ from VIDEO_PREFIX"
            )
        parsed = jobs()  # after the prefixes, as before: a bad prefix is named first
        try:
            defaults: Options | InvalidOptionsError = from_environment(env)
        except InvalidOptionsError as error:
            defaults = error
        return [
            cls(job=job, defaults=defaults, video_prefix=video_prefix, output_prefix=output_prefix)
            for job in parsed
        ]
