"""The sinks: outputs written to the bucket (over real HTTP to moto), only under the output prefix."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from devkit.environment import overlaid_environment as environment
from local_stack.emulator import Emulator
from thumbnailer import aws
from thumbnailer.sinks import BucketSink, put_output


@pytest.fixture(scope="module")
def s3(worker_emulator: Emulator) -> Any:
    return worker_emulator.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"sink-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def test_put_output_sets_type_cache_control_and_metadata(s3: Any, bucket: str) -> None:
    body = random.Random(15).randbytes(2048)
    put_output(
        bucket,
        "thumbnails/a.jpg",
        body,
        content_type="image/jpeg",
        cache_control="public, max-age=86400",
        metadata={"source-key": "videos/a.mp4", "frame-time": "12.5"},
        client=s3,
    )
    head = s3.head_object(Bucket=bucket, Key="thumbnails/a.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=86400"
    assert head["Metadata"] == {"source-key": "videos/a.mp4", "frame-time": "12.5"}
    assert s3.get_object(Bucket=bucket, Key="thumbnails/a.jpg")["Body"].read() == body


def test_bucket_sink_writes_only_under_the_output_prefix(
    s3: Any, bucket: str, worker_emulator: Emulator
) -> None:
    sink = BucketSink(bucket, "thumbnails/")
    options: dict[str, Any] = {"content_type": "image/png", "cache_control": "no-cache", "metadata": {}}
    with environment(worker_emulator.environment):
        aws.s3_client.cache_clear()
        try:
            assert sink.put("thumbnails/a.png", b"png", **options) == "thumbnails/a.png"
            with pytest.raises(ValueError, match="outside 'thumbnails/'"):
                sink.put("videos/a.mp4", b"not a video", **options)
        finally:
            aws.s3_client.cache_clear()
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} == {"thumbnails/a.png"}
