"""Where the pipeline writes outputs: the bucket (the task) or a directory (the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from thumbnailer.aws import s3_client

if TYPE_CHECKING:  # the stubs are a dev dependency, absent from the image
    from mypy_boto3_s3 import S3Client


def put_output(
    bucket: str,
    key: str,
    body: bytes,
    *,
    content_type: str,
    cache_control: str,
    metadata: Mapping[str, str],
    client: S3Client | None = None,
) -> None:
    """Write one output object (a thumbnail or the manifest)."""
    (client or s3_client()).put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        CacheControl=cache_control,
        Metadata=dict(metadata),
    )


class BucketSink:
    """Writes outputs to the bucket, only under the output prefix."""

    def __init__(self, bucket: str, output_prefix: str) -> None:
        self.bucket = bucket
        self.output_prefix = output_prefix

    def put(
        self, name: str, body: bytes, *, content_type: str, cache_control: str, metadata: Mapping[str, str]
    ) -> str:
        if not name.startswith(self.output_prefix):
            raise ValueError(f"refusing to write {name!r} outside {self.output_prefix!r}")
        put_output(
            self.bucket, name, body, content_type=content_type, cache_control=cache_control, metadata=metadata
        )
        return name


class DirectorySink:
    """Writes outputs as files in one directory (the CLI)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(
        self, name: str, body: bytes, *, content_type: str, cache_control: str, metadata: Mapping[str, str]
    ) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / Path(name).name
        path.write_bytes(body)
        return str(path)
