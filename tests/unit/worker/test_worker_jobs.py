"""THUMBNAIL_JOB parsing and the task's settings: each bad value named in the error."""

from __future__ import annotations

import json

import pytest

from thumbnailer.errors import InvalidOptionsError
from thumbnailer.jobs import Job
from thumbnailer.settings import Settings

JOB = {"bucket": "b", "key": "videos/a.mp4", "version_id": "v1", "etag": "e", "size": 10}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("{", "is not JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"key": "videos/a.mp4"}), "bucket must be a non-empty string"),
        (json.dumps({**JOB, "key": ""}), "key must be a non-empty string"),
        (json.dumps({**JOB, "etag": 5}), "etag must be a string or null"),
        (json.dumps({**JOB, "size": -1}), "size -1 must be"),
        (json.dumps({**JOB, "size": True}), "size True must be"),
        (json.dumps({**JOB, "size": 1.5}), "size 1.5 must be"),
    ],
)
def test_a_bad_job_names_what_is_wrong(raw: str | None, message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        Job.parse(raw)


def test_a_job_parses_with_empty_strings_as_none() -> None:
    job = Job.parse(json.dumps({**JOB, "version_id": "", "etag": "", "size": None}))
    assert job == Job(bucket="b", key="videos/a.mp4")


def test_settings_keep_a_bad_default_for_the_error_manifest() -> None:
    env = {"THUMBNAIL_JOB": json.dumps(JOB), "THUMBNAIL_AT": "5s"}
    settings = Settings.from_environment(env)
    assert settings.job.version_id == "v1"
    assert isinstance(settings.defaults, InvalidOptionsError)
    assert (settings.video_prefix, settings.output_prefix) == ("videos/", "thumbnails/")
    with pytest.raises(InvalidOptionsError, match="OUTPUT_PREFIX"):
        Settings.from_environment({**env, "OUTPUT_PREFIX": "videos/"})


def test_a_batch_gives_one_settings_per_job_in_order_with_the_same_defaults() -> None:
    second = {**JOB, "key": "videos/b.mp4", "attempt": 3}
    batch = Settings.for_task({"THUMBNAIL_JOBS": json.dumps([JOB, second]), "THUMBNAIL_AT": "2"})
    assert [s.job.key for s in batch] == ["videos/a.mp4", "videos/b.mp4"]
    assert batch[1].job.attempt == 3 and batch[0].defaults == batch[1].defaults
    assert [s.job for s in Settings.for_task({"THUMBNAIL_JOB": json.dumps(JOB)})] == [
        Job.parse(json.dumps(JOB))
    ]
    with pytest.raises(InvalidOptionsError, match=r"THUMBNAIL_JOBS\[1\] size -1"):
        Settings.for_task({"THUMBNAIL_JOBS": json.dumps([JOB, {**JOB, "size": -1}])})
