"""AWS clients: created on first use, then reused by every invocation of the execution environment."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# Standard mode retries throttling and transient errors with exponential backoff and jitter
# (at most 2 s, then 4 s between attempts here). Three attempts of at most 3 s to connect and
# 10 s to answer bound one API call, retries included, to WORST_CALL_SECONDS.
ATTEMPTS = 3
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10
WORST_CALL_SECONDS = ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + 2 + 4

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
    user_agent_extra="thumbnail-launcher",
)


@functools.cache
def ecs_client() -> ECSClient:
    """The ECS client (tests: ecs_client.cache_clear() to get a fresh one)."""
    return boto3.client("ecs", config=CLIENT_CONFIG)


@functools.cache
def s3_client() -> S3Client:
    """The recovery function's S3 client: error manifests under the output prefix."""
    return boto3.client("s3", config=CLIENT_CONFIG)


@functools.cache
def sqs_client() -> SQSClient:
    """Retries and failed jobs go through SQS."""
    return boto3.client("sqs", config=CLIENT_CONFIG)


@functools.cache
def lambda_client() -> LambdaClient:
    """The launcher's Lambda client: jobs to the worker function (asynchronous Invoke)."""
    return boto3.client("lambda", config=CLIENT_CONFIG)


@functools.cache
def dynamodb_client() -> DynamoDBClient:
    """The job ledger (ledger.py)."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


def clear_caches() -> None:
    """Forget every client: a fresh execution environment (tests)."""
    for factory in (ecs_client, s3_client, sqs_client, lambda_client, dynamodb_client):
        factory.cache_clear()
