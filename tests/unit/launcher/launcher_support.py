"""Helpers shared by the launcher tests: event files, a Lambda context, the ECS world's environment,
the RunTask wire recorder and a reader of Powertools' stdout."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.models import botocore_stubber

from devkit.paths import REPO_ROOT
from thumbnail_launcher import settings

EVENTS_DIR = REPO_ROOT / "src" / "events"
REGION = "us-east-1"
# The bucket the sample events in src/events name.
BUCKET = "thumbnail-creator-123456789012-us-east-1"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


@dataclass
class LambdaContext:
    """What Powertools reads from the Lambda context (the shape Powertools' own tests use)."""

    function_name: str = "thumbnail-launcher"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:thumbnail-launcher"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass(frozen=True)
class EcsWorld:
    cluster_arn: str
    task_definition_arn: str
    subnet_ids: tuple[str, ...]
    security_group_id: str
    pending_queue_url: str
    job_ledger_table: str

    def environment(self, **overrides: str) -> dict[str, str]:
        """The launcher's environment as template.yaml sets it (docs/contract.md), pointing at this world."""
        env = {
            settings.CLUSTER_ARN: self.cluster_arn,
            settings.TASK_DEFINITION_ARN: self.task_definition_arn,
            settings.CONTAINER_NAME: "worker",
            settings.SUBNET_IDS: ",".join(self.subnet_ids),
            settings.SECURITY_GROUP_IDS: self.security_group_id,
            settings.ASSIGN_PUBLIC_IP: "DISABLED",
            settings.USE_FARGATE_SPOT: "false",
            settings.VIDEO_PREFIX: "videos/",
            settings.VIDEO_SUFFIX: ".mp4",
            settings.BUCKET_NAME: BUCKET,
            # The task path; the worker function's is tested with runtime overrides (test_dispatch.py).
            settings.THUMBNAIL_RUNTIME: "fargate",
            settings.WORKER_FUNCTION_NAME: "thumbnail-worker",
            settings.PENDING_QUEUE_URL: self.pending_queue_url,
            settings.JOB_LEDGER_TABLE: self.job_ledger_table,
            settings.MAX_CONCURRENT_TASKS: "100",
            settings.MAX_JOBS_PER_TASK: "10",
            settings.WORKER_DEADLINE_SECONDS: "900",
            settings.POWERTOOLS_SERVICE_NAME: "thumbnail-launcher",
            settings.POWERTOOLS_METRICS_NAMESPACE: "ThumbnailCreator",
            settings.POWERTOOLS_LOG_LEVEL: "INFO",
        }
        env.update(overrides)
        return env


@dataclass(frozen=True)
class RecoveryWorld:
    ecs: EcsWorld
    retry_queue_url: str
    failed_jobs_queue_url: str

    def environment(self, **overrides: str) -> dict[str, str]:
        """The recovery function's environment as template.yaml sets it (docs/contract.md)."""
        env = self.ecs.environment(
            **{
                settings.POWERTOOLS_SERVICE_NAME: "thumbnail-recovery",
                settings.OUTPUT_PREFIX: "thumbnails/",
                settings.MAX_ATTEMPTS: "3",
                settings.MAX_TASK_MEMORY: "8192",
                settings.RETRY_DELAY_SECONDS: "30",
                settings.RETRY_QUEUE_URL: self.retry_queue_url,
                settings.FAILED_JOBS_QUEUE_URL: self.failed_jobs_queue_url,
            }
        )
        env.update(overrides)
        return env


class _RawBody:
    """The raw stream an AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


# A canned answer: HTTP status and JSON body.
Reply = tuple[int, dict[str, Any]]


@dataclass
class RunTaskWire:
    """Every RunTask request the launcher's client sends, as JSON, and optional canned replies.

    Installed in place of moto's `before-send` hook: it answers when a test asks, else hands the
    request to moto. (botocore calls every `before-send` handler, so moto would still run a task
    for a request already answered if both were registered.) botocore serialises the request,
    parses a canned reply and applies its retry rules to it exactly as to an answer from AWS.
    """

    requests: list[dict[str, Any]] = field(default_factory=list)
    responders: list[Callable[[dict[str, Any]], Reply | None]] = field(default_factory=list)

    def __call__(self, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
        if event_name == "before-send.ecs.RunTask":
            body = json.loads(request.body or b"{}")
            self.requests.append(body)
            for responder in self.responders:
                reply = responder(body)
                if reply is not None:
                    status, payload = reply
                    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "injected"}
                    return AWSResponse(request.url, status, headers, _RawBody(json.dumps(payload).encode()))
        return botocore_stubber(event_name, request, **kwargs)

    def reset(self) -> None:
        self.requests.clear()
        self.responders.clear()

    def reply(self, responder: Callable[[dict[str, Any]], Reply | None]) -> None:
        self.responders.append(responder)

    def job_keys(self) -> list[str]:
        return [job_of(request)["key"] for request in self.requests]


def job_of(run_task: dict[str, Any]) -> dict[str, Any]:
    """The THUMBNAIL_JOB carried by a RunTask request (or a described task's overrides)."""
    (override,) = run_task["overrides"]["containerOverrides"]
    values = {item["name"]: item["value"] for item in override["environment"]}
    return dict(json.loads(values["THUMBNAIL_JOB"]))


def emitted(captured: str) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Powertools output on stdout: (metric values by name, log records)."""
    metric_values: dict[str, float] = {}
    logs: list[dict[str, Any]] = []
    for line in captured.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "_aws" in record:
            for definition in record["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    value = record[metric["Name"]]
                    # Powertools writes a list when a metric was added more than once.
                    metric_values[metric["Name"]] = sum(value) if isinstance(value, list) else value
        else:
            logs.append(record)
    return metric_values, logs
