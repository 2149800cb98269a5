"""The local Fargate's account limits and bookkeeping: the vCPU quota RunTask enforces, what
ListTasks shows once the runner has stopped a task, and how many tasks ran at once.

Real moto over HTTP (with the local stack's RunTask patch), the real task runner, real worker
processes; each worker waits for a file the test writes, so the test decides when it ends.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from local_stack import moto_hooks
from local_stack.emulator import Emulator, running_emulator
from local_stack.stack import LocalStack
from local_stack.task_runner import TaskRunner

STARTED_BY = "thumbnail-launcher"  # what the launcher passes to RunTask (src/launcher)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    moto_hooks.apply()
    with running_emulator() as running:
        yield running
        moto_hooks.set_vcpu_quota(running.endpoint_url, None)


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.05)


class Cluster:
    """A cluster, a 1-vCPU Fargate task definition, and RunTask as the launcher calls it."""

    def __init__(self, emulator: Emulator, tmp_path: Path) -> None:
        ec2, self.ecs = emulator.client("ec2"), emulator.client("ecs")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto's run_task fails with HTTP 500 in a VPC without DNS hostnames (docs/emulator-gaps.md).
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="quota-test", Description="t", VpcId=vpc_id)["GroupId"]
        self.network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
        # Unique: moto's state is per process, and other tests' emulators share it.
        name = f"quota-{uuid.uuid4().hex[:8]}"
        self.arn = self.ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
        self.release = tmp_path / "release"
        # Each worker says it runs, then waits until the test releases it.
        command = (
            "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); "
            f"[time.sleep(0.05) for _ in iter(lambda: pathlib.Path({str(self.release)!r}).exists(), True)]"
        )
        self.started = tmp_path / "started"
        self.started.mkdir()
        self.definition = self.register("quota-test", ["python"])
        self._command = command

    def register(self, family: str, command: list[str], environment: dict[str, str] | None = None) -> str:
        """A 1-vCPU, 2 GB Fargate task definition whose container `worker` runs `command`."""
        return str(
            self.ecs.register_task_definition(
                family=family,
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="1024",
                memory="2048",
                containerDefinitions=[
                    {
                        "name": "worker",
                        "image": "worker",
                        "memory": 2048,
                        "essential": True,
                        "command": command,
                        "environment": [{"name": k, "value": v} for k, v in (environment or {}).items()],
                    }
                ],
            )["taskDefinition"]["taskDefinitionArn"]
        )

    def run_task(self, name: str, cpu: str | None = None) -> dict[str, Any]:
        overrides: dict[str, Any] = {
            "containerOverrides": [
                {"name": "worker", "command": ["python", "-c", self._command, str(self.started / name)]}
            ]
        }
        if cpu is not None:
            overrides["cpu"] = cpu
        answer: dict[str, Any] = self.ecs.run_task(
            cluster=self.arn,
            taskDefinition=self.definition,
            launchType="FARGATE",
            networkConfiguration=self.network,
            startedBy=STARTED_BY,
            overrides=overrides,
        )
        return answer

    def running(self) -> list[str]:
        """The launcher's count of its running tasks (how it keeps to MaxConcurrentTasks)."""
        pages = self.ecs.get_paginator("list_tasks").paginate(
            cluster=self.arn, startedBy=STARTED_BY, desiredStatus="RUNNING"
        )
        return [arn for page in pages for arn in page["taskArns"]]


def test_run_task_over_the_vcpu_quota_fails_as_ecs_does_until_a_task_stops(
    emulator: Emulator, tmp_path: Path
) -> None:
    moto_hooks.set_vcpu_quota(emulator.endpoint_url, 1)
    cluster = Cluster(emulator, tmp_path)
    runner = TaskRunner(emulator, cluster.arn, tmp_path / "logs", poll_interval_s=0.05).start()
    try:
        first = cluster.run_task("first")
        assert first["failures"] == [] and len(first["tasks"]) == 1
        first_arn = first["tasks"][0]["taskArn"]
        _until((cluster.started / "first").exists, "the first worker")

        refused = cluster.run_task("second")
        assert refused["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert refused["tasks"] == []
        assert refused["failures"] == [
            {
                "arn": cluster.arn,
                "reason": "You've reached the limit on the number of vCPUs you can run concurrently",
            }
        ]
        # A smaller task (the cpu override counts, not the definition's) is refused too: 1 + 0.25 > 1.
        assert cluster.run_task("small", cpu="256")["failures"][0]["reason"] == moto_hooks.VCPU_LIMIT_REASON
        assert cluster.running() == [first_arn]

        cluster.release.touch()  # the first worker ends; the runner stops its task
        _until(lambda: first_arn in runner.outcomes, "the first task's stop")
        assert runner.outcomes[first_arn].exit_code == 0
        assert cluster.running() == []
        stopped = cluster.ecs.list_tasks(cluster=cluster.arn, startedBy=STARTED_BY, desiredStatus="STOPPED")
        assert stopped["taskArns"] == [first_arn]

        again = cluster.run_task("third")
        assert again["failures"] == [] and len(again["tasks"]) == 1
        _until(lambda: again["tasks"][0]["taskArn"] in runner.outcomes, "the third task's stop")
        assert runner.started_count() == 2 and runner.max_concurrent_tasks() == 1
    finally:
        cluster.release.touch()
        runner.stop()


def test_the_runner_reports_the_most_tasks_running_at_once(emulator: Emulator, tmp_path: Path) -> None:
    """No quota: three tasks at once, then one more after they ended; at most three ran together."""
    cluster = Cluster(emulator, tmp_path)
    runner = TaskRunner(
        emulator, cluster.arn, tmp_path / "logs", poll_interval_s=0.05, max_parallel=3
    ).start()
    try:
        arns = [cluster.run_task(name)["tasks"][0]["taskArn"] for name in ("a", "b", "c")]
        _until(lambda: all((cluster.started / name).exists() for name in "abc"), "three workers")
        assert sorted(cluster.running()) == sorted(arns) and runner.max_concurrent_tasks() == 3
        cluster.release.touch()
        _until(lambda: all(arn in runner.outcomes for arn in arns), "three stops")
        later = cluster.run_task("d")["tasks"][0]["taskArn"]
        _until(lambda: later in runner.outcomes, "the fourth task's stop")
        assert runner.started_count() == 4 and runner.max_concurrent_tasks() == 3
        assert all(stopped is not None and stopped >= started for started, stopped in runner.intervals())
        assert cluster.running() == []
    finally:
        cluster.release.touch()
        runner.stop()


def test_a_batch_task_runs_every_job_and_reports_them_all(
    emulator: Emulator, tmp_path: Path, tiny_video: Path
) -> None:
    """THUMBNAIL_JOBS with two jobs, one task: the worker (python -m thumbnailer.task, as the image
    runs it) writes both manifests; the runner's outcome names both jobs."""
    cluster = Cluster(emulator, tmp_path)
    s3 = emulator.client("s3")
    bucket = f"batch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    jobs = []
    for key in ("videos/one.mp4", "videos/two.mp4"):
        put = s3.put_object(Bucket=bucket, Key=key, Body=tiny_video.read_bytes())
        jobs.append({"bucket": bucket, "key": key, "etag": put["ETag"].strip('"'), "attempt": 1})
    definition = cluster.register(
        "batch-test",
        ["python", "-m", "thumbnailer.task"],
        {"VIDEO_PREFIX": "videos/", "OUTPUT_PREFIX": "thumbnails/"},
    )
    runner = TaskRunner(emulator, cluster.arn, tmp_path / "logs", poll_interval_s=0.05).start()
    try:
        [task] = cluster.ecs.run_task(
            cluster=cluster.arn,
            taskDefinition=definition,
            launchType="FARGATE",
            networkConfiguration=cluster.network,
            startedBy=STARTED_BY,
            overrides={
                "containerOverrides": [
                    {"name": "worker", "environment": [{"name": "THUMBNAIL_JOBS", "value": json.dumps(jobs)}]}
                ]
            },
        )["tasks"]
        _until(lambda: task["taskArn"] in runner.outcomes, "the batch task's stop", timeout_s=180)
    finally:
        runner.stop()
    outcome = runner.outcomes[task["taskArn"]]
    assert outcome.exit_code == 0, outcome.log_path.read_text()
    assert outcome.keys == ("videos/one.mp4", "videos/two.mp4") and outcome.key == "videos/one.mp4"
    assert tuple(job["key"] for job in outcome.jobs) == outcome.keys
    for job in jobs:
        name = "thumbnails/" + job["key"].removeprefix("videos/")
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{name}.json")["Body"].read())
        assert manifest["status"] == "ok" and manifest["runtime"] == "fargate"
        assert manifest["input"]["key"] == job["key"] and manifest["input"]["attempt"] == 1
        thumbnail = s3.get_object(Bucket=bucket, Key=manifest["thumbnails"][0]["name"])["Body"].read()
        assert Image.open(io.BytesIO(thumbnail)).size == (160, 120)


@pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported CloudFormation types
def test_the_local_stack_passes_its_vcpu_quota_to_run_task(tmp_path: Path) -> None:
    """LocalStack(vcpu_quota=) (make chaos/local-up VCPU_QUOTA=): below one task's vCPUs, RunTask
    with the stack's own task definition and network is refused, as ECS would refuse it."""
    with LocalStack(work_dir=tmp_path, stack_name="thumbnail-creator-quota", vcpu_quota=0.125) as stack:
        outputs = stack.outputs
        answer = stack.emulator.client("ecs").run_task(
            cluster=outputs["ClusterArn"],
            taskDefinition=outputs["TaskDefinitionArn"],
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": outputs["SubnetIds"].split(","),
                    "securityGroups": [outputs["SecurityGroupId"]],
                }
            },
            startedBy=STARTED_BY,
            clientToken="quota-test",
        )
        assert answer["tasks"] == []
        assert answer["failures"] == [{"arn": outputs["ClusterArn"], "reason": moto_hooks.VCPU_LIMIT_REASON}]
        assert stack.runner.started_count() == 0
