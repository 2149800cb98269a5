"""The worker function (ThumbnailRuntime auto/lambda): its code, limits, retries, fallback path and rights.

Least privilege over the SAM-transformed template, as test_template_iam.py does for the others:
the function's S3 rights are exactly the worker task role's (one policy for both), it may only
send to the retry queue, and only the launcher may invoke it.
"""

from __future__ import annotations

from typing import Any

import pytest

from devkit.paths import REPO_ROOT
from local_stack.template import load_template, transform
from tests.unit.test_template import contract_section, contract_table
from tests.unit.test_template_iam import actions_of, allowed, function_role, policies, target, task_definition

TEMPLATE_PATH = REPO_ROOT / "template.yaml"
WORKER = "WorkerFunction"


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return transform(sam)


@pytest.fixture(scope="module")
def worker(cfn: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = cfn["Resources"][WORKER]["Properties"]
    return properties


def test_runtime_parameter_defaults_to_auto_and_reaches_every_function(
    sam: dict[str, Any], cfn: dict[str, Any]
) -> None:
    parameter = sam["Parameters"]["ThumbnailRuntime"]
    assert parameter["Default"] == "auto"
    assert parameter["AllowedValues"] == ["auto", "lambda", "fargate"]
    for function in ("LauncherFunction", "RecoveryFunction", WORKER):
        variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["THUMBNAIL_RUNTIME"] == {"Ref": "ThumbnailRuntime"}, function
    for function in ("LauncherFunction", "RecoveryFunction"):
        variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["WORKER_FUNCTION_NAME"] == {"Ref": WORKER}, function


def test_worker_function_is_the_worker_package_on_python312_arm64(sam: dict[str, Any]) -> None:
    properties = sam["Resources"][WORKER]["Properties"]
    # The image's directory: `sam build` installs container/requirements.txt, the image's own list.
    assert properties["CodeUri"] == "container"
    assert (REPO_ROOT / "container" / "requirements.txt").is_file()
    assert properties["Handler"] == "thumbnailer.lambda_handler.handler"
    assert (properties["Runtime"], properties["Architectures"]) == ("python3.12", ["arm64"])
    assert properties["MemorySize"] == {"Ref": "WorkerFunctionMemory"}
    assert properties["Timeout"] == {"Ref": "WorkerFunctionTimeout"}
    parameters = sam["Parameters"]
    assert 128 <= parameters["WorkerFunctionMemory"]["Default"] <= 10240
    assert 1 <= parameters["WorkerFunctionTimeout"]["Default"] <= 900


def test_worker_function_concurrency_is_unreserved_by_default(
    sam: dict[str, Any], worker: dict[str, Any]
) -> None:
    assert sam["Parameters"]["WorkerFunctionReservedConcurrency"]["Default"] == 0
    condition = sam["Conditions"]["ReserveWorkerFunctionConcurrency"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WorkerFunctionReservedConcurrency"}, 0]}]}
    assert worker["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "ReserveWorkerFunctionConcurrency",
            {"Ref": "WorkerFunctionReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }


def test_failed_invocations_go_to_the_retry_queue_without_lambda_retries_under_auto(
    cfn: dict[str, Any],
) -> None:
    (config,) = [
        r["Properties"]
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
        and r["Properties"]["FunctionName"] == {"Ref": WORKER}
    ]
    # The recovery function reads RetryQueue (its event source mapping): the record becomes a task.
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["RetryQueue", "Arn"]}
    mappings = [
        r["Properties"] for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert any(m["EventSourceArn"] == {"Fn::GetAtt": ["RetryQueue", "Arn"]} for m in mappings)
    assert config["MaximumRetryAttempts"] == {"Fn::If": ["AlwaysLambda", 2, 0]}
    assert config["MaximumEventAgeInSeconds"] == {"Fn::If": ["AlwaysLambda", 21600, 300]}


def test_worker_function_environment_is_the_contract(worker: dict[str, Any]) -> None:
    variables = worker["Environment"]["Variables"]
    table = contract_table("Worker function environment")
    section = contract_section("Worker function environment")
    shared = {"THUMBNAIL_AT", "THUMBNAIL_FORMAT", "THUMBNAIL_WIDTHS", "VIDEO_PREFIX", "OUTPUT_PREFIX"}
    shared |= {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
    assert all(f"`{name}`" in section for name in shared)
    assert set(variables) == set(table) | shared
    assert variables["RETRY_QUEUE_URL"] == {"Ref": "RetryQueue"}


def test_worker_function_s3_rights_are_exactly_the_task_roles(cfn: dict[str, Any]) -> None:
    _, definition = task_definition(cfn)
    task_role, function = target(definition["TaskRoleArn"]), function_role(cfn, WORKER)
    # One policy, WorkerTaskBucketAccess, attached to both roles: the same grants by construction.
    bucket_policies = [name for name, roles, _ in policies(cfn) if task_role in roles]
    assert bucket_policies == ["WorkerTaskBucketAccess"]
    (roles,) = [roles for name, roles, _ in policies(cfn) if name == "WorkerTaskBucketAccess"]
    assert roles == {task_role, function}

    def s3_grants(role: str) -> list[tuple[str, str]]:
        return sorted(
            (action, str(resource))
            for s in allowed(cfn, role)
            for action in s["Action"]
            if action.startswith("s3:")
            for resource in s["Resource"]
        )

    assert s3_grants(function) == s3_grants(task_role)
    assert actions_of(allowed(cfn, function), "s3") == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}


def test_worker_function_may_only_send_to_the_retry_queue_and_nothing_else(cfn: dict[str, Any]) -> None:
    statements = allowed(cfn, function_role(cfn, WORKER))
    services = {a.split(":")[0] for s in statements for a in s["Action"]}
    assert services == {"s3", "sqs"}  # and its logs, through AWSLambdaBasicExecutionRole
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in s["Action"])]
    assert {a for s in sqs for a in s["Action"]} == {"sqs:SendMessage"}
    assert {target(r) for s in sqs for r in s["Resource"]} == {"RetryQueue"}


def test_only_the_launcher_may_invoke_the_worker_function(cfn: dict[str, Any]) -> None:
    invokers = {
        role
        for _, roles, document in policies(cfn)
        for role in roles
        for s in (
            document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        )
        if "lambda:InvokeFunction" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert invokers == {function_role(cfn, "LauncherFunction")}
    (statement,) = [
        s
        for s in allowed(cfn, function_role(cfn, "LauncherFunction"))
        if "lambda:InvokeFunction" in s["Action"]
    ]
    assert statement["Action"] == ["lambda:InvokeFunction"]
    assert statement["Resource"] == [{"Fn::GetAtt": [WORKER, "Arn"]}]
    # No resource policy lets anything else invoke it (no event source: the Invoke API only).
    permissions = [
        r["Properties"]
        for r in cfn["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] == {"Ref": WORKER}
    ]
    assert permissions == []


def test_worker_function_logs_have_retention(cfn: dict[str, Any], worker: dict[str, Any]) -> None:
    group = cfn["Resources"][target(worker["LoggingConfig"]["LogGroup"])]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
