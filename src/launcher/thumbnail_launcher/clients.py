"""AWS clients: created on first use, then reused by every invocation of the execution environment."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

# Standard mode retries throttling and transient errors with exponential backoff and jitter;
# 5 attempts bound the worst case to well under a minute of the Lambda's time.
ECS_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="thumbnail-launcher",
)


@functools.cache
def ecs_client() -> ECSClient:
    """The ECS client (tests: ecs_client.cache_clear() to get a fresh one)."""
    return boto3.client("ecs", config=ECS_CLIENT_CONFIG)
