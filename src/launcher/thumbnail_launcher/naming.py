"""Where the worker writes a video's manifest, and reading it back (the recovery function, the sweep).

The worker's own rule is container/thumbnailer/naming.py; tests/unit/test_job_contract.py checks
that both give the same key (docs/contract.md "Output naming").
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Without s3:ListBucket on the prefix a missing key reads as 403, not 404.
_MISSING = {"NoSuchKey", "404", "AccessDenied", "403"}


def manifest_key(key: str, video_prefix: str, output_prefix: str) -> str:
    """`videos/<rest>` -> `thumbnails/<rest>.json` (a key outside the prefix keeps its whole name)."""
    rest = key[len(video_prefix) :] if video_prefix and key.startswith(video_prefix) else key
    return f"{output_prefix}{rest}.json"


def read_manifest(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """The manifest at `key`, or None when there is none (or it is not a JSON object)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in _MISSING:
            return None
        raise
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
