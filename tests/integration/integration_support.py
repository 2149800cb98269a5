"""One pipeline, two places: the local stack (default) or a deployed stack (AWS_SAM_STACK_NAME)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from local_stack.stack import LocalStack
from local_stack.task_runner import override_jobs


@dataclass(frozen=True)
class Produced:
    """Everything the pipeline wrote for one video, and how its task(s) ended."""

    key: str
    manifest_key: str
    manifest: Mapping[str, Any]
    thumbnails: Mapping[str, bytes]  # object key -> bytes
    exit_codes: tuple[int, ...]  # one per stopped task for this key


class Pipeline(Protocol):
    name: str

    def upload(self, body: bytes, key: str, metadata: Mapping[str, str] | None = None) -> None: ...

    def wait_for(self, key: str, timeout_s: float = 120.0) -> Produced: ...

    def exit_codes(self, key: str) -> tuple[int, ...]: ...

    def settle(self, timeout_s: float = 60.0) -> None: ...

    def objects(self, prefix: str) -> list[str]: ...


def _thumbnail_names(manifest: Mapping[str, Any]) -> list[str]:
    return [str(item["name"]) for item in manifest.get("thumbnails", [])]


class LocalPipeline:
    """The local stack: events through the local pump, tasks through the local runner."""

    name = "local"

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self._s3 = stack.emulator.client("s3")

    def upload(self, body: bytes, key: str, metadata: Mapping[str, str] | None = None) -> None:
        self.stack.upload(body, key, metadata)

    def wait_for(self, key: str, timeout_s: float = 120.0) -> Produced:
        result = self.stack.wait_for(key, timeout_s)
        names = _thumbnail_names(result.manifest)
        thumbnails = {
            name: self._s3.get_object(Bucket=self.stack.bucket, Key=name)["Body"].read() for name in names
        }
        # What the manifest names is what the bucket holds, and nothing else under the stem.
        assert sorted(names) == sorted(result.thumbnail_keys), (names, result.thumbnail_keys)
        return Produced(key, result.manifest_key, result.manifest, thumbnails, self.exit_codes(key))

    def exit_codes(self, key: str) -> tuple[int, ...]:
        return tuple(outcome.exit_code for outcome in self.stack.outcomes_for(key))

    def settle(self, timeout_s: float = 60.0) -> None:
        self.stack.wait_idle(timeout_s)

    def objects(self, prefix: str) -> list[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.stack.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


class DeployedPipeline:
    """A stack deployed on AWS: outputs from CloudFormation, tasks from ECS, results from S3."""

    name = "deployed"

    def __init__(self, stack_name: str) -> None:
        import boto3

        self._cloudformation = boto3.client("cloudformation")
        stack = self._cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self.bucket = self.outputs["BucketName"]
        self._s3 = boto3.client("s3")
        self._ecs = boto3.client("ecs")
        definition = self._ecs.describe_task_definition(taskDefinition=self.outputs["TaskDefinitionArn"])
        container = definition["taskDefinition"]["containerDefinitions"][0]
        env = {item["name"]: item["value"] for item in container.get("environment", [])}
        self._video_prefix, self._output_prefix = env["VIDEO_PREFIX"], env["OUTPUT_PREFIX"]
        self._started = time.time()

    def upload(self, body: bytes, key: str, metadata: Mapping[str, str] | None = None) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=dict(metadata or {}))

    def _manifest_key(self, key: str) -> str:
        return f"{self._output_prefix}{key.removeprefix(self._video_prefix)}.json"

    def wait_for(self, key: str, timeout_s: float = 600.0) -> Produced:
        deadline = time.monotonic() + timeout_s
        manifest_key = self._manifest_key(key)
        while time.monotonic() < deadline:
            try:
                body = self._s3.get_object(Bucket=self.bucket, Key=manifest_key)["Body"].read()
            except self._s3.exceptions.NoSuchKey:
                time.sleep(5)
                continue
            manifest = json.loads(body)
            thumbnails = {
                name: self._s3.get_object(Bucket=self.bucket, Key=name)["Body"].read()
                for name in _thumbnail_names(manifest)
            }
            codes: tuple[int, ...] = ()
            while not codes and time.monotonic() < deadline:
                codes = self.exit_codes(key)
                time.sleep(0 if codes else 5)
            return Produced(key, manifest_key, manifest, thumbnails, codes)
        raise TimeoutError(f"no manifest for {key!r} in s3://{self.bucket} after {timeout_s:.0f} s")

    def exit_codes(self, key: str) -> tuple[int, ...]:
        cluster = self.outputs["ClusterArn"]
        arns = [
            arn
            for page in self._ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, desiredStatus="STOPPED"
            )
            for arn in page["taskArns"]
        ]
        codes: list[int] = []
        for start in range(0, len(arns), 100):
            for task in self._ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"]:
                if task.get("createdAt") and task["createdAt"].timestamp() < self._started - 60:
                    continue
                if any(job.get("key") == key for job in override_jobs(task)):  # THUMBNAIL_JOB(S)
                    # A container still stopping has no exitCode yet: not an outcome.
                    codes.extend(c["exitCode"] for c in task.get("containers", []) if "exitCode" in c)
        return tuple(codes)

    def settle(self, timeout_s: float = 60.0) -> None:
        time.sleep(min(timeout_s, 60.0))  # S3 -> Lambda -> RunTask takes seconds on AWS

    def objects(self, prefix: str) -> list[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]
