"""template.yaml as CloudFormation receives it (SAM-transformed offline), checked against docs/contract.md.

Every expectation is computed from the template, the contract or the launcher's settings, so that a
change in one of them that the others do not follow fails here.
"""

from __future__ import annotations

import copy
import graphlib
import ipaddress
import json
import re
from typing import Any

import pytest

from devkit.paths import REPO_ROOT
from local_stack.template import dependency_graph, load_template, references, transform

TEMPLATE_PATH = REPO_ROOT / "template.yaml"
CONTRACT_PATH = REPO_ROOT / "docs" / "contract.md"


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return transform(sam)


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def target(value: Any) -> str:
    """The logical id a lone Ref or GetAtt points at."""
    assert isinstance(value, dict) and len(value) == 1, value
    ((key, argument),) = value.items()
    assert key in {"Ref", "Fn::GetAtt"}, value
    return argument if key == "Ref" else argument[0]


def default_of(template: dict[str, Any], value: Any) -> str | None:
    """A literal, or a Ref to a parameter, as it resolves with the parameters' defaults."""
    if isinstance(value, str | int | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template.get("Parameters", {}):
        return str(template["Parameters"][value["Ref"]].get("Default"))
    return None


def contract_section(title: str) -> str:
    text = CONTRACT_PATH.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/contract.md has no section {title!r}"
    return match.group(1)


def contract_table(title: str) -> dict[str, list[str]]:
    """`| \\`NAME\\` | cell | cell |` rows of a contract section: NAME -> the other cells."""
    rows = {}
    for line in contract_section(title).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) > 1:
            rows[cells[0].strip("`")] = cells[1:]
    assert rows, f"no table in contract section {title!r}"
    return rows


LAUNCHER = "LauncherFunction"
RECOVERY = "RecoveryFunction"


@pytest.fixture(scope="module")
def launcher(cfn: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = cfn["Resources"][LAUNCHER]["Properties"]
    return properties


@pytest.fixture(scope="module")
def launcher_env(launcher: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = launcher["Environment"]["Variables"]
    return variables


@pytest.fixture(scope="module")
def task_definition(cfn: dict[str, Any]) -> dict[str, Any]:
    return only(cfn, "AWS::ECS::TaskDefinition")[1]["Properties"]


# ---------------------------------------------------------------- S3 -> launcher
def test_bucket_notifies_the_launcher_for_mp4_uploads_under_videos_in_either_case(
    cfn: dict[str, Any], launcher_env: dict[str, Any]
) -> None:
    bucket_name, bucket = only(cfn, "AWS::S3::Bucket")
    function_name = LAUNCHER
    configurations = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]

    filters = []
    for configuration in configurations:
        assert target(configuration["Function"]) == function_name
        assert configuration["Event"] == "s3:ObjectCreated:*"
        rules = {rule["Name"].lower(): rule["Value"] for rule in configuration["Filter"]["S3Key"]["Rules"]}
        filters.append((rules["prefix"], rules["suffix"]))

    # The launcher's own prefix/suffix settings and the bucket's filters must select the same keys.
    suffix = launcher_env["VIDEO_SUFFIX"]
    assert {prefix for prefix, _ in filters} == {launcher_env["VIDEO_PREFIX"]}
    assert {s for _, s in filters} == {suffix.lower(), suffix.upper()}
    assert len(filters) == 2

    # S3 refuses two configurations for the same event whose prefixes and suffixes both overlap.
    for index, (prefix, suffix_a) in enumerate(filters):
        for other_prefix, suffix_b in filters[index + 1 :]:
            prefixes_overlap = prefix.startswith(other_prefix) or other_prefix.startswith(prefix)
            suffixes_overlap = suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
            assert not (prefixes_overlap and suffixes_overlap), (prefix, suffix_a, other_prefix, suffix_b)

    # S3 may invoke the function, and CloudFormation creates that permission before the bucket.
    permissions = {
        name
        for name, permission in of_type(cfn, "AWS::Lambda::Permission").items()
        if permission["Properties"]["Principal"] == "s3.amazonaws.com"
        and target(permission["Properties"]["FunctionName"]) == function_name
        and permission["Properties"].get("SourceAccount") == {"Ref": "AWS::AccountId"}
    }
    assert permissions and permissions <= set(bucket.get("DependsOn", []))
    assert bucket_name


def test_bucket_is_private_owner_enforced_encrypted_versioned_and_tls_only(cfn: dict[str, Any]) -> None:
    bucket_name, bucket = only(cfn, "AWS::S3::Bucket")
    properties = bucket["Properties"]

    block = properties["PublicAccessBlockConfiguration"]
    assert set(block) == {"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"}
    assert all(value is True for value in block.values())
    assert [rule["ObjectOwnership"] for rule in properties["OwnershipControls"]["Rules"]] == [
        "BucketOwnerEnforced"
    ]
    algorithms = {
        rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    }
    assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"

    policies = [
        p["Properties"]
        for p in of_type(cfn, "AWS::S3::BucketPolicy").values()
        if target(p["Properties"]["Bucket"]) == bucket_name
    ]
    assert len(policies) == 1
    tls_denials = [
        statement
        for statement in policies[0]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Principal"] in ("*", {"AWS": "*"})
        and str(statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    ]
    assert len(tls_denials) == 1
    denied = tls_denials[0]
    assert denied["Action"] in ("s3:*", ["s3:*"])
    # Both the bucket and every object in it.
    resources = [r if isinstance(r, dict) else {"literal": r} for r in denied["Resource"]]
    assert {"Fn::GetAtt": [bucket_name, "Arn"]} in resources
    assert {"Fn::Sub": f"${{{bucket_name}.Arn}}/*"} in resources


def test_bucket_name_is_one_lowercase_safe_expression_of_pseudo_parameters(cfn: dict[str, Any]) -> None:
    _, bucket = only(cfn, "AWS::S3::Bucket")
    text, variables = bucket["Properties"]["BucketName"]["Fn::Sub"]
    # Literal parts must already be valid bucket-name characters; stack names may hold capitals,
    # so AWS::StackName must not appear, only values that are lower case by construction.
    literal = re.sub(r"\$\{[^}]+\}", "", text)
    assert re.fullmatch(r"[a-z0-9-]+", literal), literal
    used = set(re.findall(r"\$\{([^}]+)\}", text))
    assert used - set(variables) <= {"AWS::AccountId", "AWS::Region"}
    assert "AWS::StackName" not in repr(bucket["Properties"]["BucketName"])
    assert references(variables) == set()
    assert "AWS::StackId" in repr(variables)
    # Nothing else spells the bucket name out but the launcher, which may not refer to the bucket
    # (a circular dependency), and so repeats the very same expression.
    elsewhere = [
        name
        for name, resource in cfn["Resources"].items()
        if resource is not bucket and literal.split("-")[0] + "-${AWS::AccountId}" in repr(resource)
    ]
    assert elsewhere == [LAUNCHER]
    launcher_env = cfn["Resources"][LAUNCHER]["Properties"]["Environment"]["Variables"]
    assert launcher_env["BUCKET_NAME"] == bucket["Properties"]["BucketName"]


# ---------------------------------------------------------------- launcher
def test_launcher_environment_is_exactly_the_contract_and_covers_its_settings(
    launcher_env: dict[str, Any],
) -> None:
    from thumbnail_launcher.settings import environment_variables

    contract = set(contract_table("Launcher environment"))
    assert set(launcher_env) == contract
    assert environment_variables() <= set(launcher_env), environment_variables() - set(launcher_env)


def test_launcher_environment_points_at_the_stack_resources(
    cfn: dict[str, Any], launcher_env: dict[str, Any], task_definition: dict[str, Any]
) -> None:
    cluster_name, _ = only(cfn, "AWS::ECS::Cluster")
    task_definition_name, _ = only(cfn, "AWS::ECS::TaskDefinition")
    assert launcher_env["CLUSTER_ARN"] == {"Fn::GetAtt": [cluster_name, "Arn"]}
    assert launcher_env["TASK_DEFINITION_ARN"] == {"Ref": task_definition_name}
    assert [c["Name"] for c in task_definition["ContainerDefinitions"]] == [launcher_env["CONTAINER_NAME"]]
    assert launcher_env["CONTAINER_NAME"] == "worker"
    assert target(launcher_env["SECURITY_GROUP_IDS"]) in of_type(cfn, "AWS::EC2::SecurityGroup")
    separator, subnets = launcher_env["SUBNET_IDS"]["Fn::Join"]
    assert separator == ","
    assert {target(s) for s in subnets} <= set(of_type(cfn, "AWS::EC2::Subnet"))
    assert default_of(cfn, launcher_env["USE_FARGATE_SPOT"]) in {"true", "false"}
    assert launcher_env["ASSIGN_PUBLIC_IP"] in {"ENABLED", "DISABLED"}


def test_launcher_failures_go_to_an_encrypted_dead_letter_queue(
    cfn: dict[str, Any], launcher: dict[str, Any]
) -> None:
    function_name = LAUNCHER
    (properties,) = [
        config["Properties"]
        for config in of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
        if target(config["Properties"]["FunctionName"]) == function_name
    ]
    assert 0 <= properties["MaximumRetryAttempts"] <= 2
    assert 60 <= properties["MaximumEventAgeInSeconds"] <= 21600

    queue_name = target(properties["DestinationConfig"]["OnFailure"]["Destination"])
    queue = cfn["Resources"][queue_name]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"].get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue["Properties"]
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600

    # The function's role may send there (Lambda sends with the function's permissions).
    role = cfn["Resources"][target(launcher["Role"])]["Properties"]
    senders = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow" and "sqs:SendMessage" in str(statement["Action"])
    ]
    # ...and to the pending-jobs queue, where jobs beyond the quotas wait (not a failure).
    assert sorted(target(s["Resource"]) for s in senders) == sorted([queue_name, "PendingJobsQueue"])


def test_launcher_concurrency_is_unreserved_by_default_and_can_be_reserved(
    cfn: dict[str, Any], launcher: dict[str, Any]
) -> None:
    """Lambda keeps 100 units unreserved: any default reservation fails the first deploy on a new
    account (concurrency quota 10)."""
    condition, reserved, otherwise = launcher["ReservedConcurrentExecutions"]["Fn::If"]
    assert otherwise == {"Ref": "AWS::NoValue"}
    parameter = target(reserved)
    default = int(cfn["Parameters"][parameter]["Default"])
    assert default == 0
    # The condition holds exactly when the parameter is not 0.
    assert cfn["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, 0]}]}
    assert cfn["Parameters"][parameter]["MinValue"] == 0


def test_launcher_log_group_has_retention(cfn: dict[str, Any], launcher: dict[str, Any]) -> None:
    log_group = cfn["Resources"][target(launcher["LoggingConfig"]["LogGroup"])]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    retention = log_group["Properties"]["RetentionInDays"]
    assert int(default_of(cfn, retention) or 0) in cfn["Parameters"]["LogRetentionDays"]["AllowedValues"]


# ---------------------------------------------------------------- worker task
def test_task_definition_runs_one_read_only_fargate_container_with_logs(
    cfn: dict[str, Any], task_definition: dict[str, Any]
) -> None:
    assert task_definition["RequiresCompatibilities"] == ["FARGATE"]
    assert task_definition["NetworkMode"] == "awsvpc"
    assert task_definition["RuntimePlatform"]["OperatingSystemFamily"] == "LINUX"
    architecture = default_of(cfn, task_definition["RuntimePlatform"]["CpuArchitecture"])
    assert architecture in {"ARM64", "X86_64"}
    assert target(task_definition["TaskRoleArn"]) != target(task_definition["ExecutionRoleArn"])

    (container,) = task_definition["ContainerDefinitions"]
    assert container["Essential"] is True
    assert container["ReadonlyRootFilesystem"] is True
    # moto's RunTask fails without a container memory value; it must fit the task's memory.
    container_memory = int(default_of(cfn, container["Memory"]) or 0)
    assert 0 < container_memory <= int(default_of(cfn, task_definition["Memory"]) or 0)
    assert 0 < container["StopTimeout"] <= 120

    # With a read-only root, /tmp must be a writable task volume.
    volumes = {volume["Name"] for volume in task_definition["Volumes"]}
    tmp = [m for m in container["MountPoints"] if m["ContainerPath"] == "/tmp"]
    assert len(tmp) == 1 and tmp[0]["SourceVolume"] in volumes and not tmp[0].get("ReadOnly", False)

    logging = container["LogConfiguration"]
    assert logging["LogDriver"] == "awslogs"
    log_group = cfn["Resources"][target(logging["Options"]["awslogs-group"])]
    assert log_group["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" in log_group["Properties"]
    assert logging["Options"]["awslogs-region"] == {"Ref": "AWS::Region"}
    assert logging["Options"]["awslogs-stream-prefix"]


def test_task_image_defaults_to_the_stack_repository(
    cfn: dict[str, Any], task_definition: dict[str, Any]
) -> None:
    (container,) = task_definition["ContainerDefinitions"]
    condition, stack_image, custom_image = container["Image"]["Fn::If"]
    assert cfn["Conditions"][condition] == {"Fn::Equals": [custom_image, ""]}
    assert default_of(cfn, custom_image) == ""
    repository = only(cfn, "AWS::ECR::Repository")[0]
    assert stack_image["Fn::Sub"].startswith(f"${{{repository}.RepositoryUri}}:")


def test_worker_environment_is_the_contract_with_its_defaults(
    cfn: dict[str, Any], task_definition: dict[str, Any]
) -> None:
    (container,) = task_definition["ContainerDefinitions"]
    environment = {variable["Name"]: variable["Value"] for variable in container["Environment"]}
    expected = {}
    for name, (default, _meaning) in contract_table("Worker environment").items():
        if default.startswith("("):  # set per task by the launcher's override
            continue
        expected[name] = "" if default == "empty" else default.strip("`")
    assert {name: default_of(cfn, value) for name, value in environment.items()} == expected


def test_task_size_defaults_pass_the_templates_fargate_rules(cfn: dict[str, Any]) -> None:
    parameters = cfn["Parameters"]
    cpu, memory = str(parameters["TaskCpu"]["Default"]), str(parameters["TaskMemory"]["Default"])
    allowed_memory = {str(m) for m in parameters["TaskMemory"]["AllowedValues"]}
    rules_by_cpu = {}
    for rule in cfn["Rules"].values():
        (reference, cpu_value) = rule["RuleCondition"]["Fn::Equals"]
        assert reference == {"Ref": "TaskCpu"}
        (assertion,) = rule["Assertions"]
        memories, memory_reference = assertion["Assert"]["Fn::Contains"]
        assert memory_reference == {"Ref": "TaskMemory"}
        assert set(memories) <= allowed_memory
        rules_by_cpu[cpu_value] = set(memories)
    # Every CPU choice has a rule, and the defaults are a pair those rules accept.
    assert set(rules_by_cpu) == {str(c) for c in parameters["TaskCpu"]["AllowedValues"]}
    assert memory in rules_by_cpu[cpu]


def test_cluster_offers_fargate_and_spot_with_container_insights(cfn: dict[str, Any]) -> None:
    _, cluster = only(cfn, "AWS::ECS::Cluster")
    assert set(cluster["Properties"]["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    settings = {s["Name"]: s["Value"] for s in cluster["Properties"]["ClusterSettings"]}
    assert settings["containerInsights"] in {"enabled", "enhanced"}


def test_repository_scans_and_expires_images(cfn: dict[str, Any]) -> None:
    import json

    _, repository = only(cfn, "AWS::ECR::Repository")
    properties = repository["Properties"]
    assert properties["ImageScanningConfiguration"]["ScanOnPush"] is True
    assert properties["ImageTagMutability"] in {"IMMUTABLE", "MUTABLE"}
    assert properties["EncryptionConfiguration"]["EncryptionType"] in {"AES256", "KMS"}
    text = properties["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
    tag = str(cfn["Parameters"]["WorkerImageTag"]["Default"])
    rules = sorted(
        json.loads(text.replace("${WorkerImageTag}", tag))["rules"], key=lambda r: r["rulePriority"]
    )
    # First, the deployed tag: a rule that matches an image keeps later rules from expiring it,
    # and this one keeps its (single, immutable) image.
    protect = rules[0]["selection"]
    assert protect["tagPatternList"] == [tag] and protect["countType"] == "imageCountMoreThan"
    assert protect["countNumber"] >= 1
    # Untagged images go after a day; the rest are counted, and the catch-all rule comes last.
    assert any(r["selection"]["tagStatus"] == "untagged" and r["action"]["type"] == "expire" for r in rules)
    assert rules[-1]["selection"]["tagStatus"] == "any"
    assert [r for r in rules if r["selection"]["tagStatus"] == "any"] == rules[-1:]


def test_bucket_and_queues_survive_stack_deletion_but_not_a_failed_first_create(cfn: dict[str, Any]) -> None:
    _, bucket = only(cfn, "AWS::S3::Bucket")
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    for name, queue in of_type(cfn, "AWS::SQS::Queue").items():
        assert queue.get("DeletionPolicy") == "Retain", name
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(rule.get("ExpiredObjectDeleteMarker") is True for rule in rules)


def test_availability_zones_can_be_named(cfn: dict[str, Any]) -> None:
    for letter, index in (("A", 0), ("B", 1)):
        zone = cfn["Resources"][f"PublicSubnet{letter}"]["Properties"]["AvailabilityZone"]
        condition, named, default = zone["Fn::If"]
        assert named == {"Ref": f"AvailabilityZone{letter}"}
        assert cfn["Parameters"][f"AvailabilityZone{letter}"]["Default"] == ""
        assert default == {"Fn::Select": [index, {"Fn::GetAZs": ""}]}
        assert cfn["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [named, ""]}]}


# ---------------------------------------------------------------- network
def test_vpc_has_dns_and_two_public_subnets_in_different_zones(
    cfn: dict[str, Any], launcher_env: dict[str, Any]
) -> None:
    vpc_name, vpc = only(cfn, "AWS::EC2::VPC")
    assert vpc["Properties"]["EnableDnsHostnames"] is True
    assert vpc["Properties"]["EnableDnsSupport"] is True
    network = ipaddress.ip_network(vpc["Properties"]["CidrBlock"])

    subnet_names = [target(s) for s in launcher_env["SUBNET_IDS"]["Fn::Join"][1]]
    subnets = [cfn["Resources"][name]["Properties"] for name in subnet_names]
    assert len(subnets) == 2
    zones = []
    for subnet in subnets:
        assert target(subnet["VpcId"]) == vpc_name
        # By default (no AvailabilityZoneA/B given): the region's zones by position.
        index, zones_of_region = subnet["AvailabilityZone"]["Fn::If"][2]["Fn::Select"]
        assert zones_of_region == {"Fn::GetAZs": ""}
        zones.append(int(index))
    assert len(set(zones)) == 2
    cidrs = [ipaddress.ip_network(s["CidrBlock"]) for s in subnets]
    assert all(cidr.subnet_of(network) for cidr in cidrs)
    assert not cidrs[0].overlaps(cidrs[1])

    # A task with a public IP needs its subnet's route table to lead to the internet gateway.
    gateway = only(cfn, "AWS::EC2::InternetGateway")[0]
    default_routes = {
        target(route["Properties"]["RouteTableId"])
        for route in of_type(cfn, "AWS::EC2::Route").values()
        if route["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"
        and target(route["Properties"]["GatewayId"]) == gateway
    }
    associations = {
        target(a["Properties"]["SubnetId"]): target(a["Properties"]["RouteTableId"])
        for a in of_type(cfn, "AWS::EC2::SubnetRouteTableAssociation").values()
    }
    assert launcher_env["ASSIGN_PUBLIC_IP"] == "ENABLED"
    assert all(associations.get(name) in default_routes for name in subnet_names)
    attachments = of_type(cfn, "AWS::EC2::VPCGatewayAttachment").values()
    assert any(target(a["Properties"]["InternetGatewayId"]) == gateway for a in attachments)

    # S3 traffic stays on the gateway endpoint of those route tables.
    endpoints = [
        e["Properties"]
        for e in of_type(cfn, "AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == "Gateway"
    ]
    assert any(
        e["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}
        and {target(t) for t in e["RouteTableIds"]} >= {associations[n] for n in subnet_names}
        for e in endpoints
    )


def test_worker_security_group_admits_nothing_and_sends_only_https(
    cfn: dict[str, Any], launcher_env: dict[str, Any]
) -> None:
    group = cfn["Resources"][target(launcher_env["SECURITY_GROUP_IDS"])]["Properties"]
    assert group.get("SecurityGroupIngress", []) == []
    assert not of_type(cfn, "AWS::EC2::SecurityGroupIngress")
    egress = group["SecurityGroupEgress"]
    assert egress and all(
        (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443) for rule in egress
    )


# ---------------------------------------------------------------- outputs
def test_outputs_are_exactly_the_contract(cfn: dict[str, Any], launcher_env: dict[str, Any]) -> None:
    contract = re.findall(r"`(\w+)`", contract_section("Stack outputs"))
    assert sorted(cfn["Outputs"]) == sorted(contract)
    outputs = {name: output["Value"] for name, output in cfn["Outputs"].items()}
    # Each output reads a resource of the kind its name says, or what the launcher itself is given.
    assert outputs["SubnetIds"] == launcher_env["SUBNET_IDS"]
    assert outputs["SecurityGroupId"] == launcher_env["SECURITY_GROUP_IDS"]
    assert outputs["ClusterArn"] == launcher_env["CLUSTER_ARN"]
    assert outputs["TaskDefinitionArn"] == launcher_env["TASK_DEFINITION_ARN"]
    kinds = {
        "BucketName": "AWS::S3::Bucket",
        "LauncherFunctionArn": "AWS::Lambda::Function",
        "LauncherFunctionName": "AWS::Lambda::Function",
        "ClusterName": "AWS::ECS::Cluster",
        "WorkerRepositoryUri": "AWS::ECR::Repository",
        "DeadLetterQueueUrl": "AWS::SQS::Queue",
        "LauncherLogGroupName": "AWS::Logs::LogGroup",
        "WorkerLogGroupName": "AWS::Logs::LogGroup",
        "RecoveryFunctionName": "AWS::Lambda::Function",
        "RetryQueueUrl": "AWS::SQS::Queue",
        "FailedJobsQueueUrl": "AWS::SQS::Queue",
        "RecoveryDeadLetterQueueUrl": "AWS::SQS::Queue",
        "RecoveryLogGroupName": "AWS::Logs::LogGroup",
    }
    for name, kind in kinds.items():
        assert cfn["Resources"][target(outputs[name])]["Type"] == kind, name
    launcher_logs = target(cfn["Resources"][LAUNCHER]["Properties"]["LoggingConfig"]["LogGroup"])
    assert target(outputs["LauncherLogGroupName"]) == launcher_logs
    assert target(outputs["WorkerLogGroupName"]) != launcher_logs


# ---------------------------------------------------------------- dependency order
def _cycle(template: dict[str, Any]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(dependency_graph(template)).prepare()
    except graphlib.CycleError as error:
        cycle: list[str] = error.args[1]
        return cycle
    return None


def test_resources_have_no_circular_dependency_and_the_function_never_needs_the_bucket(
    cfn: dict[str, Any],
) -> None:
    assert _cycle(cfn) is None
    graph = dependency_graph(cfn)
    function_name = LAUNCHER
    bucket_name, _ = only(cfn, "AWS::S3::Bucket")
    needed, pending = set(), [function_name]
    while pending:
        for dependency in graph[pending.pop()] - needed:
            needed.add(dependency)
            pending.append(dependency)
    assert bucket_name not in needed
    # ...while the bucket does need the function (its notification names it).
    assert function_name in graph[bucket_name]


def test_the_cycle_check_catches_a_function_that_refers_to_the_bucket(sam: dict[str, Any]) -> None:
    broken = copy.deepcopy(sam)
    function = next(r for r in broken["Resources"].values() if r["Type"] == "AWS::Serverless::Function")
    bucket_name = next(n for n, r in broken["Resources"].items() if r["Type"] == "AWS::S3::Bucket")
    function["Properties"]["Environment"]["Variables"]["BUCKET"] = {"Ref": bucket_name}
    cycle = _cycle(transform(broken))
    assert cycle is not None and bucket_name in cycle


@pytest.mark.parametrize("name", ["DefaultThumbnailAt", "DefaultThumbnailWidths"])
def test_thumbnail_defaults_the_template_admits_are_ones_the_worker_accepts(
    sam: dict[str, Any], name: str
) -> None:
    """What `sam deploy` lets through must not make every task exit 2; what it refuses, the worker refuses."""
    from thumbnailer.options import parse_time_spec, parse_widths

    parameter = sam["Parameters"][name]
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch(str(parameter["Default"]))
    parse = parse_time_spec if name == "DefaultThumbnailAt" else parse_widths
    admitted = {
        "DefaultThumbnailAt": ["auto", "12", "12.5", "10%", "01:02", "00:01:02.5", "1:02:03"],
        "DefaultThumbnailWidths": ["", "320", "320,1280", "7680"],
    }[name]
    refused = {
        "DefaultThumbnailAt": ["5s", "-1", "auto ", "1e3", "01:02:03:04"],
        "DefaultThumbnailWidths": ["0", "320,", "-5", "99999"],
    }[name]
    for value in admitted:
        assert pattern.fullmatch(value), value
        parse(value, "test")
    for value in refused:
        assert not pattern.fullmatch(value), value


# ---------------------------------------------------------------- recovery
@pytest.fixture(scope="module")
def recovery(cfn: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = cfn["Resources"][RECOVERY]["Properties"]
    return properties


def test_every_stopped_worker_task_of_this_cluster_reaches_the_recovery_function(
    cfn: dict[str, Any], task_definition: dict[str, Any]
) -> None:
    (rule,) = [
        r["Properties"]
        for r in of_type(cfn, "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]
    assert [target(t["Arn"]) for t in rule["Targets"]] == [RECOVERY]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.ecs"] and pattern["detail-type"] == ["ECS Task State Change"]
    detail = pattern["detail"]
    assert detail["lastStatus"] == ["STOPPED"]
    assert detail["clusterArn"] == [{"Fn::GetAtt": [only(cfn, "AWS::ECS::Cluster")[0], "Arn"]}]
    # This family's revisions only: ARNs end in "<family>:<revision>".
    (prefix,) = detail["taskDefinitionArn"]
    family = task_definition["Family"]["Fn::Sub"]
    assert prefix["prefix"]["Fn::Sub"].endswith(f":task-definition/{family}:")
    # EventBridge may invoke the function.
    assert any(
        p["Properties"]["Principal"] == "events.amazonaws.com"
        and target(p["Properties"]["FunctionName"]) == RECOVERY
        for p in of_type(cfn, "AWS::Lambda::Permission").values()
    )


def test_recovery_environment_covers_its_settings_and_points_at_its_queues(
    recovery: dict[str, Any], launcher_env: dict[str, Any]
) -> None:
    from thumbnail_launcher.settings import recovery_environment_variables

    environment = recovery["Environment"]["Variables"]
    assert set(environment) == recovery_environment_variables()
    shared = set(launcher_env) - {"BUCKET_NAME", "POWERTOOLS_SERVICE_NAME"}
    assert {name: environment[name] for name in shared} == {name: launcher_env[name] for name in shared}
    assert target(environment["BUCKET_NAME"]) == "Bucket"
    assert target(environment["RETRY_QUEUE_URL"]) == "RetryQueue"
    assert target(environment["FAILED_JOBS_QUEUE_URL"]) == "FailedJobsQueue"
    for name, parameter in (
        ("MAX_ATTEMPTS", "MaxAttempts"),
        ("MAX_TASK_MEMORY", "MaxTaskMemory"),
        ("RETRY_DELAY_SECONDS", "RetryDelaySeconds"),
    ):
        assert environment[name] == {"Ref": parameter}


def test_recovery_has_its_own_dead_letter_queue_and_reads_due_retries_in_batches(
    cfn: dict[str, Any], recovery: dict[str, Any]
) -> None:
    (config,) = [
        c["Properties"]
        for c in of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
        if target(c["Properties"]["FunctionName"]) == RECOVERY
    ]
    assert target(config["DestinationConfig"]["OnFailure"]["Destination"]) == "RecoveryDeadLetterQueue"
    (mapping,) = of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert target(properties["FunctionName"]) == RECOVERY
    assert target(properties["EventSourceArn"]) == "RetryQueue"
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    retries = cfn["Resources"]["RetryQueue"]["Properties"]
    # AWS: a visibility timeout of at least six times the function's timeout.
    assert retries["VisibilityTimeout"] >= 6 * recovery["Timeout"]
    assert target(retries["RedrivePolicy"]["deadLetterTargetArn"]) == "FailedJobsQueue"
    failed = cfn["Resources"]["FailedJobsQueue"]["Properties"]
    assert failed["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert failed["SqsManagedSseEnabled"] is True


def test_recovery_defaults_match_the_issue_and_the_fargate_sizes(cfn: dict[str, Any]) -> None:
    parameters = cfn["Parameters"]
    assert int(parameters["MaxAttempts"]["Default"]) == 3
    assert int(parameters["WorkerDeadlineSeconds"]["Default"]) == 15 * 60
    # Doubling the task's memory from its default reaches the cap in valid Fargate sizes.
    memory, cap = int(parameters["TaskMemory"]["Default"]), int(parameters["MaxTaskMemory"]["Default"])
    assert cap >= memory and (cap // memory) & (cap // memory - 1) == 0


def test_the_sweep_schedule_is_off_by_default(cfn: dict[str, Any]) -> None:
    assert cfn["Parameters"]["SweepSchedule"]["Default"] == ""
    (schedule,) = [
        r["Properties"]
        for r in of_type(cfn, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"] and "sweep" in r["Properties"]["Targets"][0]["Input"]
    ]
    condition, enabled, disabled = schedule["State"]["Fn::If"]
    assert (enabled, disabled) == ("ENABLED", "DISABLED")
    assert cfn["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SweepSchedule"}, ""]}]}
    assert [target(t["Arn"]) for t in schedule["Targets"]] == [RECOVERY]


def test_alarms_watch_every_queue_of_lost_work_and_mail_only_when_asked(cfn: dict[str, Any]) -> None:
    alarms = of_type(cfn, "AWS::CloudWatch::Alarm")
    watched_queues = {
        target(a["Properties"]["Dimensions"][0]["Value"])
        for a in alarms.values()
        if a["Properties"]["Namespace"] == "AWS/SQS"
    }
    assert watched_queues == {
        "DeadLetterQueue",
        "FailedJobsQueue",
        "RecoveryDeadLetterQueue",
        "PendingJobsQueue",  # how long the oldest job has waited for capacity
    }
    metrics = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()}
    assert {("ThumbnailCreator", "LaunchFailures"), ("AWS/Lambda", "Errors")} <= metrics
    for name, alarm in alarms.items():
        condition, actions, none = alarm["Properties"]["AlarmActions"]["Fn::If"]
        assert condition == "HasAlarmEmail" and none == {"Ref": "AWS::NoValue"}, name
        assert [target(a) for a in actions] == ["AlarmTopic"]
    topic = cfn["Resources"]["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert cfn["Parameters"]["AlarmEmail"]["Default"] == ""


def test_a_spot_interruption_stops_the_worker_before_fargate_kills_it(
    task_definition: dict[str, Any],
) -> None:
    """Fargate Spot sends SIGTERM two minutes before it stops the task; the worker exits 143 at once."""
    (container,) = task_definition["ContainerDefinitions"]
    assert container["StopTimeout"] < 120


def test_the_scratch_volume_is_writable_by_the_images_non_root_user(task_definition: dict[str, Any]) -> None:
    """Fargate's bind mount is root's, 0755, unless the image declares the path a VOLUME (then the
    image's directory and its mode are copied in): the Dockerfile and the task definition must agree."""
    dockerfile = (REPO_ROOT / "container" / "Dockerfile").read_text(encoding="utf-8")
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    (container,) = task_definition["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is True
    mounts = [m["ContainerPath"] for m in container["MountPoints"] if m.get("ReadOnly") is False]
    volumes = set(re.findall(r'^VOLUME \["([^"]+)"\]', final_stage, flags=re.MULTILINE))
    assert mounts and set(mounts) <= volumes
    user = re.findall(r"^USER (\S+)", final_stage, flags=re.MULTILINE)
    assert user and user[-1] not in {"root", "0"}
    for path in mounts:
        # World-writable with the sticky bit, set before USER drops root.
        chmod = final_stage.index(f"chmod 1777 {path}")
        assert chmod < final_stage.index(f"USER {user[-1]}")
    assert "TMPDIR=/tmp" in final_stage and "/tmp" in mounts


def test_jobs_beyond_the_quotas_wait_in_a_queue_no_consumer_drains_on_its_own(cfn: dict[str, Any]) -> None:
    """README "Quotas and bursts": a waiting job is kept for the queue's retention, never redriven,
    and only the recovery function's drain receives it (no event source mapping)."""
    queue = cfn["Resources"]["PendingJobsQueue"]
    assert queue["Type"] == "AWS::SQS::Queue" and queue["DeletionPolicy"] == "Retain"
    properties = queue["Properties"]
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "RedrivePolicy" not in properties
    mapped = [
        target(m["Properties"]["EventSourceArn"])
        for m in of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    ]
    assert "PendingJobsQueue" not in mapped


def test_the_drain_runs_every_minute_on_the_recovery_function(cfn: dict[str, Any]) -> None:
    (drain,) = [
        r["Properties"]
        for r in of_type(cfn, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"] and "drain" in r["Properties"]["Targets"][0]["Input"]
    ]
    assert drain["ScheduleExpression"] == "rate(1 minute)"
    assert drain.get("State", "ENABLED") == "ENABLED"
    (rule_target,) = drain["Targets"]
    assert target(rule_target["Arn"]) == RECOVERY and json.loads(rule_target["Input"]) == {"drain": {}}


def test_the_job_ledger_is_on_demand_and_expires_its_items(cfn: dict[str, Any]) -> None:
    table = cfn["Resources"]["JobLedger"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("function", ["LauncherFunction", "RecoveryFunction"])
def test_both_functions_share_the_quota_settings(cfn: dict[str, Any], function: str) -> None:
    variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert variables["PENDING_QUEUE_URL"] == {"Ref": "PendingJobsQueue"}
    assert variables["JOB_LEDGER_TABLE"] == {"Ref": "JobLedger"}
    assert variables["MAX_CONCURRENT_TASKS"] == {"Ref": "MaxConcurrentTasks"}
    assert variables["MAX_JOBS_PER_TASK"] == {"Ref": "MaxJobsPerTask"}
    assert variables["WORKER_DEADLINE_SECONDS"] == {"Ref": "WorkerDeadlineSeconds"}


def test_the_defaults_fit_a_new_accounts_quota(cfn: dict[str, Any]) -> None:
    """A new account may have 5 or 6 Fargate On-Demand vCPUs: MaxConcurrentTasks tasks of the default
    size must fit, with a vCPU to spare for an out-of-memory retry's larger task."""
    parameters = cfn["Parameters"]
    tasks, cpu = int(parameters["MaxConcurrentTasks"]["Default"]), int(parameters["TaskCpu"]["Default"])
    assert tasks * cpu / 1024 + 1 <= 5
    assert (
        int(parameters["MaxJobsPerTask"]["Default"])
        <= int(parameters["WorkerDeadlineSeconds"]["Default"]) // 60
    )
    (alarm,) = [
        a["Properties"]
        for a in of_type(cfn, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    ]
    assert target(alarm["Dimensions"][0]["Value"]) == "PendingJobsQueue"
    assert alarm["Threshold"] == {"Ref": "PendingJobAgeAlarmSeconds"}
    assert parameters["PendingJobAgeAlarmSeconds"]["Default"] == 3600
