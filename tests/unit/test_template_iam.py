"""Least privilege, computed over every IAM policy CloudFormation would create (SAM's generated ones too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devkit.paths import REPO_ROOT
from local_stack.template import load_template, transform

TEMPLATE_PATH = REPO_ROOT / "template.yaml"
# Actions AWS grants only on "*" (no resource of their own): ECR's login, and ListTasks, which
# is held to the stack's cluster by its condition (asserted below).
RESOURCE_STAR_ALLOWED = {"ecr:GetAuthorizationToken", "ecs:ListTasks"}
# SAM attaches this to every function role it makes: CloudWatch Logs writes only.
MANAGED_POLICIES_ALLOWED = {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return transform(load_template(TEMPLATE_PATH))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def target(value: Any) -> str:
    ((key, argument),) = value.items()
    assert key in {"Ref", "Fn::GetAtt"}, value
    return argument if key == "Ref" else argument[0]


def policies(cfn: dict[str, Any]) -> Iterator[tuple[str, set[str], dict[str, Any]]]:
    """(where, roles it applies to, policy document) for every identity policy in the template."""
    for name, resource in cfn["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield f"{name}/{policy['PolicyName']}", {name}, policy["PolicyDocument"]
        elif resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"}:
            roles = {
                target(role) for role in as_list(properties.get("Roles", properties.get("RoleName", [])))
            }
            yield name, roles, properties["PolicyDocument"]


def allowed(cfn: dict[str, Any], role: str | None = None) -> list[dict[str, Any]]:
    """Allow statements (of one role, or all), Action and Resource as lists."""
    found = []
    for _, roles, document in policies(cfn):
        if role is not None and role not in roles:
            continue
        for statement in as_list(document["Statement"]):
            if statement["Effect"] == "Allow":
                found.append(
                    {
                        **statement,
                        "Action": as_list(statement["Action"]),
                        "Resource": as_list(statement["Resource"]),
                    }
                )
    return found


def actions_of(statements: list[dict[str, Any]], service: str) -> set[str]:
    return {a for s in statements for a in s["Action"] if a.startswith(f"{service}:")}


def task_definition(cfn: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (n, r["Properties"]) for n, r in cfn["Resources"].items() if r["Type"] == "AWS::ECS::TaskDefinition"
    ]
    return found


def resource_name(cfn: dict[str, Any], resource_type: str) -> str:
    (name,) = [n for n, r in cfn["Resources"].items() if r["Type"] == resource_type]
    return name


def test_template_has_policies_to_check(cfn: dict[str, Any]) -> None:
    # Five roles: launcher function, recovery function, worker function, worker task, task execution.
    roles = {name for name, r in cfn["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert len(roles) == 5
    assert all(any(name in applies for _, applies, _ in policies(cfn)) for name in roles)


def test_no_wildcard_actions_and_resource_star_only_where_aws_requires_it(cfn: dict[str, Any]) -> None:
    for where, _, document in policies(cfn):
        for statement in as_list(document["Statement"]):
            assert "NotAction" not in statement and "NotResource" not in statement, where
            if statement["Effect"] != "Allow":
                continue
            actions = as_list(statement["Action"])
            assert not [a for a in actions if "*" in a], (where, actions)
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= RESOURCE_STAR_ALLOWED, (where, actions)
                if "ecs:ListTasks" in actions:
                    assert set(statement["Condition"]["ArnEquals"]) == {"ecs:cluster"}, where
    for name, resource in cfn["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            assert set(resource["Properties"].get("ManagedPolicyArns", [])) <= MANAGED_POLICIES_ALLOWED, name


def test_roles_are_assumable_only_by_their_service(cfn: dict[str, Any]) -> None:
    for name, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            services = as_list(statement["Principal"]["Service"])
            assert set(statement["Principal"]) == {"Service"}, name
            assert len(services) == 1 and services[0] in {"lambda.amazonaws.com", "ecs-tasks.amazonaws.com"}
            assert as_list(statement["Action"]) == ["sts:AssumeRole"]


def test_worker_task_role_reads_videos_and_writes_thumbnails_only(cfn: dict[str, Any]) -> None:
    _, definition = task_definition(cfn)
    task_role = target(definition["TaskRoleArn"])
    bucket = resource_name(cfn, "AWS::S3::Bucket")
    statements = allowed(cfn, task_role)
    assert statements
    grants: dict[str, set[str]] = {}
    for statement in statements:
        for resource in statement["Resource"]:
            # Objects of this stack's bucket, under one prefix: never the bucket itself or "*".
            arn = resource["Fn::Sub"]
            assert arn.startswith(f"${{{bucket}.Arn}}/"), arn
            for action in statement["Action"]:
                grants.setdefault(action, set()).add(arn.removeprefix(f"${{{bucket}.Arn}}/"))
    # The worker's own prefixes (its environment) are exactly what it may read and write.
    (container,) = definition["ContainerDefinitions"]
    environment = {v["Name"]: v["Value"] for v in container["Environment"]}
    videos, thumbnails = environment["VIDEO_PREFIX"] + "*", environment["OUTPUT_PREFIX"] + "*"
    assert (videos, thumbnails) == ("videos/*", "thumbnails/*")
    assert grants == {"s3:GetObject": {videos}, "s3:GetObjectVersion": {videos}, "s3:PutObject": {thumbnails}}


def test_execution_role_pulls_only_the_stack_image_and_writes_only_the_worker_logs(
    cfn: dict[str, Any],
) -> None:
    _, definition = task_definition(cfn)
    execution_role = target(definition["ExecutionRoleArn"])
    repository = resource_name(cfn, "AWS::ECR::Repository")
    (container,) = definition["ContainerDefinitions"]
    log_group = target(container["LogConfiguration"]["Options"]["awslogs-group"])
    by_action: dict[str, list[Any]] = {}
    for statement in allowed(cfn, execution_role):
        for action in statement["Action"]:
            by_action.setdefault(action, []).extend(statement["Resource"])
    assert by_action == {
        "ecr:GetAuthorizationToken": ["*"],
        "ecr:BatchGetImage": [{"Fn::GetAtt": [repository, "Arn"]}],
        "ecr:GetDownloadUrlForLayer": [{"Fn::GetAtt": [repository, "Arn"]}],
        "logs:CreateLogStream": [{"Fn::GetAtt": [log_group, "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": [log_group, "Arn"]}],
    }


WORKER_FAMILY_REVISIONS = (
    "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${AWS::StackName}-worker:*"
)


def function_role(cfn: dict[str, Any], function: str) -> str:
    return target(cfn["Resources"][function]["Properties"]["Role"])


@pytest.mark.parametrize("function", ["LauncherFunction", "RecoveryFunction"])
def test_each_function_may_run_only_the_worker_family_in_the_stack_cluster(
    cfn: dict[str, Any], function: str
) -> None:
    """Every revision of the worker's family: a deploy that registers a new one never fails a launch."""
    _, definition = task_definition(cfn)
    assert definition["Family"] == {"Fn::Sub": "${AWS::StackName}-worker"}
    cluster = resource_name(cfn, "AWS::ECS::Cluster")
    statements = allowed(cfn, function_role(cfn, function))
    assert actions_of(statements, "ecs") == {"ecs:RunTask", "ecs:TagResource", "ecs:ListTasks"}

    # Counting the running tasks (MaxConcurrentTasks): in the stack's cluster only.
    (listing,) = [s for s in statements if "ecs:ListTasks" in s["Action"]]
    assert listing["Action"] == ["ecs:ListTasks"] and listing["Resource"] == ["*"]
    assert listing["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}

    (run_task,) = [s for s in statements if "ecs:RunTask" in s["Action"]]
    assert run_task["Action"] == ["ecs:RunTask"]
    assert run_task["Resource"] == [{"Fn::Sub": WORKER_FAMILY_REVISIONS}]
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}

    # RunTask with tags also needs TagResource, on tasks it creates in that cluster only.
    for tagging in [s for s in statements if "ecs:TagResource" in s["Action"]]:
        assert tagging["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
        (resource,) = tagging["Resource"]
        assert f":task/${{{cluster}}}/*" in resource["Fn::Sub"]


def test_launcher_touches_no_object(cfn: dict[str, Any]) -> None:
    assert actions_of(allowed(cfn, function_role(cfn, "LauncherFunction")), "s3") == set()


@pytest.mark.parametrize("function", ["LauncherFunction", "RecoveryFunction"])
def test_each_function_may_pass_only_the_two_worker_roles_and_only_to_ecs_tasks(
    cfn: dict[str, Any], function: str
) -> None:
    _, definition = task_definition(cfn)
    (statement,) = [s for s in allowed(cfn, function_role(cfn, function)) if "iam:PassRole" in s["Action"]]
    assert statement["Action"] == ["iam:PassRole"]
    assert {target(r) for r in statement["Resource"]} == {
        target(definition["TaskRoleArn"]),
        target(definition["ExecutionRoleArn"]),
    }
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    # No other role may pass roles at all.
    passers = {role for _, roles, _ in policies(cfn) for role in roles} - {
        function_role(cfn, name) for name in ("LauncherFunction", "RecoveryFunction")
    }
    for role in passers:
        assert "iam:PassRole" not in {a for s in allowed(cfn, role) for a in s["Action"]}, role


def test_recovery_writes_only_manifests_and_lists_only_its_prefixes(cfn: dict[str, Any]) -> None:
    bucket = resource_name(cfn, "AWS::S3::Bucket")
    statements = allowed(cfn, function_role(cfn, "RecoveryFunction"))
    grants: dict[str, list[Any]] = {}
    for statement in statements:
        for action in statement["Action"]:
            if action.startswith("s3:"):
                grants.setdefault(action, []).extend(statement["Resource"])
    manifests = [{"Fn::Sub": f"${{{bucket}.Arn}}/thumbnails/*.json"}]
    the_bucket = [{"Fn::GetAtt": [bucket, "Arn"]}]
    assert grants == {
        "s3:GetObject": manifests,
        "s3:PutObject": manifests,
        "s3:ListBucket": the_bucket,
        "s3:ListBucketVersions": the_bucket,
    }
    (listing,) = [s for s in statements if "s3:ListBucket" in s["Action"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["videos/*", "thumbnails/*"]}}


def queues_by_action(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each SQS action granted, with the queues (logical ids) it is granted on."""
    by_action: dict[str, set[str]] = {}
    for statement in statements:
        for action in statement["Action"]:
            if action.startswith("sqs:"):
                by_action.setdefault(action, set()).update(target(r) for r in statement["Resource"])
    return by_action


def test_recovery_uses_only_its_own_queues(cfn: dict[str, Any]) -> None:
    statements = allowed(cfn, function_role(cfn, "RecoveryFunction"))
    assert queues_by_action(statements) == {
        "sqs:SendMessage": {"RetryQueue", "FailedJobsQueue", "RecoveryDeadLetterQueue", "PendingJobsQueue"},
        "sqs:ReceiveMessage": {"RetryQueue", "PendingJobsQueue"},
        "sqs:DeleteMessage": {"RetryQueue", "PendingJobsQueue"},
        "sqs:GetQueueAttributes": {"RetryQueue", "PendingJobsQueue"},
        "sqs:ChangeMessageVisibility": {"RetryQueue", "PendingJobsQueue"},
    }
    # Nothing but ECS, S3 (manifests), SQS (its queues), the job ledger and its own logs.
    services = {a.split(":")[0] for s in statements for a in s["Action"]}
    assert services <= {"ecs", "iam", "s3", "sqs", "dynamodb", "logs"}


def test_the_launcher_may_only_queue_jobs_and_read_the_queue_length(cfn: dict[str, Any]) -> None:
    statements = allowed(cfn, function_role(cfn, "LauncherFunction"))
    assert queues_by_action(statements) == {
        "sqs:SendMessage": {"DeadLetterQueue", "PendingJobsQueue"},
        "sqs:GetQueueAttributes": {"PendingJobsQueue"},
    }


@pytest.mark.parametrize("function", ["LauncherFunction", "RecoveryFunction"])
def test_the_job_ledger_is_read_and_updated_item_by_item_only(cfn: dict[str, Any], function: str) -> None:
    """No Scan, Query, DeleteItem or table-level action; and no other role touches DynamoDB."""
    statements = allowed(cfn, function_role(cfn, function))
    ledger = [s for s in statements if actions_of([s], "dynamodb")]
    assert {a for s in ledger for a in s["Action"]} == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert {target(r) for s in ledger for r in s["Resource"]} == {"JobLedger"}
    others = {role for _, roles, _ in policies(cfn) for role in roles} - {
        function_role(cfn, name) for name in ("LauncherFunction", "RecoveryFunction")
    }
    for role in others:
        assert not actions_of(allowed(cfn, role), "dynamodb"), role
