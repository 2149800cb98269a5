"""AWS clients for the worker: created on first use, cached, with explicit retries and timeouts."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the stubs are a dev dependency, absent from the image
    from mypy_boto3_s3 import S3Client

# Ranged GETs from S3: standard retries (connection errors, 5xx, throttling) with backoff;
# a pool large enough for the parallel keyframe prefetch; timeouts so a stalled socket
# is retried rather than hanging the task.
S3_CONFIG: dict[str, Any] = {
    "retries": {"mode": "standard", "total_max_attempts": 5},  # the first try included
    "connect_timeout": 5,
    "read_timeout": 20,
    "max_pool_connections": 32,
}


@functools.cache
def s3_client() -> S3Client:
    """The worker's S3 client. botocore honours AWS_ENDPOINT_URL (the local emulator) by itself.

    Made by botocore's session, as `boto3.client` does, without importing boto3: its resource
    layer and s3transfer (which boto3 imports at once) are never used here. botocore is imported
    here, on first use: it takes 0.13 s to import and the client 0.07 s more, which the CLI on a
    local file never needs.
    """
    import botocore.config
    import botocore.session

    client = botocore.session.get_session().create_client("s3", config=botocore.config.Config(**S3_CONFIG))
    return cast("S3Client", client)
