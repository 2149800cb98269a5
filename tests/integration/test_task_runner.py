"""The local Fargate (local_stack/task_runner.py) against the emulator: what happens to running workers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.emulator import Emulator, running_emulator
from local_stack.task_runner import TaskRunner


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running


def start_task(emulator: Emulator, command: list[str]) -> tuple[str, str]:
    """A Fargate task in the emulator whose container runs `command`: (cluster ARN, task ARN)."""
    ec2, ecs = emulator.client("ec2"), emulator.client("ecs")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # moto's run_task fails with HTTP 500 in a VPC without DNS hostnames (docs/emulator-gaps.md).
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group_id = ec2.create_security_group(GroupName="runner-test", Description="test", VpcId=vpc_id)["GroupId"]
    cluster_arn = ecs.create_cluster(clusterName="runner-test")["cluster"]["clusterArn"]
    definition_arn = ecs.register_task_definition(
        family="runner-test",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "worker", "image": "worker", "memory": 512, "essential": True, "command": command}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    [task] = ecs.run_task(
        cluster=cluster_arn,
        taskDefinition=definition_arn,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet_id], "securityGroups": [group_id]}},
    )["tasks"]
    return cluster_arn, task["taskArn"]


def test_stop_stops_the_workers_still_running(emulator: Emulator, tmp_path: Path) -> None:
    """`make local-down` stops the stack: a worker in the middle of a long video must not keep it
    up (or outlive it) until the task timeout. ECS's StopTask stops the container the same way."""
    started = tmp_path / "worker-started"
    long_job = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(30)"
    cluster_arn, task_arn = start_task(emulator, ["python", "-c", long_job])
    runner = TaskRunner(emulator, cluster_arn, tmp_path / "logs", poll_interval_s=0.05, timeout_s=300).start()
    try:
        # The worker process is running (not merely seen) before the stack is asked to stop.
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), f"the runner started no worker: {runner.errors}"
    finally:
        runner.stop()
    [outcome] = runner.outcomes.values()
    assert outcome.task_arn == task_arn
    assert outcome.exit_code == 128 + 15, "the worker was not stopped with SIGTERM"
    [task] = emulator.client("ecs").describe_tasks(cluster=cluster_arn, tasks=[task_arn])["tasks"]
    assert task["lastStatus"] == "STOPPED"
