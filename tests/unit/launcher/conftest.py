"""Launcher test fixtures: an ECS world in moto (in-process), the handler module loaded afresh,
and a hook on the real botocore clients to see, and when a test asks, answer RunTask requests."""

from __future__ import annotations

import hashlib
import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

import boto3
import pytest
from moto import mock_aws
from moto.core.models import botocore_stubber

from launcher_support import BUCKET, REGION, EcsWorld, RecoveryWorld, RunTaskWire
from thumbnail_launcher import clients, settings


@dataclass(frozen=True)
class _Network:
    subnet_ids: tuple[str, ...]
    security_group_id: str
    task_definition_arn: str
    wire: RunTaskWire


@pytest.fixture(scope="module")
def _moto_network() -> Iterator[_Network]:
    """moto, in-process, for one test module: a VPC with two subnets and a security group, and the
    worker's Fargate task definition. Built once per module: EC2 setup is the slow part."""
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECS"):
            env.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_REGION", REGION)
        # One default session for the module (clients created from it share its loaded models),
        # with the RunTask wire in front of moto.
        wire = RunTaskWire()
        boto3.setup_default_session(region_name=REGION)
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.unregister("before-send", botocore_stubber)
        boto3.DEFAULT_SESSION.events.register("before-send", wire)
        try:
            ec2 = boto3.client("ec2")
            vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            # moto's run_task fails with HTTP 500 in a VPC without DNS hostnames (docs/emulator-gaps.md).
            ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
            subnet_ids = tuple(
                ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
                for cidr, zone in (("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b"))
            )
            group_id = ec2.create_security_group(GroupName="worker", Description="worker", VpcId=vpc_id)[
                "GroupId"
            ]
            task_definition_arn = boto3.client("ecs").register_task_definition(
                family="thumbnail-worker",
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="1024",
                memory="2048",
                # moto's run_task fails (HTTP 500) for a container without `memory` (docs/emulator-gaps.md).
                containerDefinitions=[
                    {"name": "worker", "image": "worker:latest", "memory": 2048, "essential": True}
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            yield _Network(subnet_ids, group_id, task_definition_arn, wire)
        finally:
            boto3.DEFAULT_SESSION = None


@pytest.fixture
def ecs_world(_moto_network: _Network, request: pytest.FixtureRequest) -> EcsWorld:
    """A cluster of this test's own (so its task list is its own) in the module's network,
    a clean wire and no cached settings or client: a fresh execution environment."""
    _moto_network.wire.reset()
    _reset_caches()
    name = "thumbnails-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    cluster_arn = boto3.client("ecs").create_cluster(clusterName=name)["cluster"]["clusterArn"]
    return EcsWorld(
        cluster_arn,
        _moto_network.task_definition_arn,
        _moto_network.subnet_ids,
        _moto_network.security_group_id,
        boto3.client("sqs").create_queue(QueueName=f"pending-{name}")["QueueUrl"],
        create_ledger_table(f"ledger-{name}"),
    )


def create_ledger_table(name: str) -> str:
    """The job ledger as template.yaml declares it (key job_id, on demand)."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def wire(_moto_network: _Network) -> RunTaskWire:
    """What the launcher sends with RunTask in this test; canned replies given with wire.reply()."""
    _moto_network.wire.reset()
    return _moto_network.wire


def _reset_caches() -> None:
    settings.get_settings.cache_clear()
    settings.get_recovery_settings.cache_clear()
    clients.clear_caches()


class _CurrentStdout:
    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def configure(
    monkeypatch: pytest.MonkeyPatch, ecs_world: EcsWorld, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., ModuleType]]:
    """configure(**env overrides) -> the handler module, loaded afresh as in a new execution environment.

    Its logs and metrics go to stdout, which capsys captures."""

    def load(**overrides: str) -> ModuleType:
        return _fresh_handler_module("app", ecs_world.environment(**overrides), monkeypatch)

    yield load
    _reset_caches()


@pytest.fixture
def app(configure: Callable[..., ModuleType]) -> ModuleType:
    return configure()


@pytest.fixture
def recovery_world(ecs_world: EcsWorld) -> RecoveryWorld:
    """The recovery function's resources in moto: the bucket, and its retry and failed-jobs queues."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # One bucket for the module's tests: each starts with it empty.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])
    suffix = ecs_world.cluster_arn.rsplit("/", 1)[1]
    return RecoveryWorld(
        ecs_world,
        retry_queue_url=sqs.create_queue(QueueName=f"retries-{suffix}")["QueueUrl"],
        failed_jobs_queue_url=sqs.create_queue(QueueName=f"failed-{suffix}")["QueueUrl"],
    )


@pytest.fixture
def configure_recovery(
    monkeypatch: pytest.MonkeyPatch, recovery_world: RecoveryWorld
) -> Iterator[Callable[..., ModuleType]]:
    """configure_recovery(**env overrides) -> recovery_app, loaded afresh; its output on stdout."""

    def load(**overrides: str) -> ModuleType:
        return _fresh_handler_module("recovery_app", recovery_world.environment(**overrides), monkeypatch)

    yield load
    _reset_caches()


def _fresh_handler_module(
    name: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    """A handler module loaded afresh with `environment`, as in a new execution environment."""
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    _reset_caches()
    # Powertools reads its service name and namespace when the module creates Logger and Metrics.
    module = importlib.reload(importlib.import_module(name))
    # Powertools binds its handler to the sys.stdout of the first load, and pytest swaps
    # sys.stdout for every test: write wherever sys.stdout is now, as Lambda's stdout would.
    handler = module.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    handler.stream = _CurrentStdout()
    return module
