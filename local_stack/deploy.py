"""Deploy template.yaml into the emulator, then make the emulator honour what moto drops.

The stack is created by CloudFormation from the SAM-transformed template. moto reports it
complete but silently drops some properties (docs/emulator-gaps.md); each is checked
here and re-applied with the plain APIs, from the template's own properties resolved by the
same engine that created the stack. Nothing here names a resource by hand: a wiring mistake in
template.yaml stays a mistake in the local stack.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.core.utils import pascal_to_camelcase

from devkit.environment import overlaid_environment
from devkit.paths import REPO_ROOT
from local_stack import moto_hooks, template
from local_stack.emulator import Emulator
from local_stack.events import FunctionConfiguration

LOG = logging.getLogger(__name__)
LAUNCHER_FUNCTION = "LauncherFunction"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
STACK_NAME = "thumbnail-creator"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# Task definition properties moto's CloudFormation keeps; all others are re-applied.
_TASK_DEFINITION_KEPT = {"Family", "ContainerDefinitions", "Volumes", "Memory"}
# Map-valued properties whose keys are data, not API field names: left as written.
_VERBATIM_KEYS = {"Options", "DockerLabels", "SystemControls"}


@dataclass(frozen=True)
class EventRoute:
    """S3 -> function, as the template wires it, delivered locally through an SQS queue."""

    bucket: str
    function_arn: str
    queue_url: str
    queue_arn: str
    events: tuple[str, ...]
    filter_rules: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RuleRoute:
    """An EventBridge rule -> function, as the template wires it, delivered through a local queue."""

    rule: str
    function_arn: str
    queue_url: str


@dataclass(frozen=True)
class ScheduleRoute:
    """An enabled schedule rule -> function, with the target's constant input: run locally on a
    short fixed period (schedules.py) instead of the rule's expression."""

    rule: str
    function_arn: str
    expression: str
    event: dict[str, Any]


@dataclass(frozen=True)
class QueueMapping:
    """An SQS event source mapping, disabled in moto (which would invoke through Docker): a local
    poller delivers its batches instead (queue_poller.py)."""

    queue_url: str
    function_arn: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class InvokeRoute:
    """Asynchronous Invoke of a function (InvocationType Event), queued locally (moto_hooks.py):
    the local Lambda runner runs each event in the function's own process (lambda_runner.py)."""

    function_arn: str
    queue_url: str
    code_dir: Path


@dataclass
class DeployedStack:
    """What the deploy produced, as AWS would report it after the fixes below."""

    stack_id: str
    name: str
    outputs: dict[str, str]
    function: FunctionConfiguration
    routes: list[EventRoute]
    fixes: list[str] = field(default_factory=list)  # what moto dropped and was re-applied
    functions: dict[str, FunctionConfiguration] = field(default_factory=dict)  # by logical id
    rule_routes: list[RuleRoute] = field(default_factory=list)
    queue_mappings: list[QueueMapping] = field(default_factory=list)
    invoke_routes: list[InvokeRoute] = field(default_factory=list)
    schedule_routes: list[ScheduleRoute] = field(default_factory=list)

    @property
    def event_queue_url(self) -> str:
        urls = {route.queue_url for route in self.routes if route.function_arn == self.function.arn}
        if len(urls) != 1:
            raise RuntimeError(f"expected one event queue for {self.function.name}, found {sorted(urls)}")
        return urls.pop()


def package_code(code_dir: Path) -> bytes:
    """The function's code directory as a Lambda zip (no caches)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(code_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(code_dir).as_posix())
    return buffer.getvalue()


def _function_code_dirs(sam_template: Mapping[str, Any], template_path: Path) -> dict[str, Path]:
    globals_uri = sam_template.get("Globals", {}).get("Function", {}).get("CodeUri")
    dirs: dict[str, Path] = {}
    for logical_id, resource in sam_template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            uri = resource.get("Properties", {}).get("CodeUri", globals_uri)
            if isinstance(uri, str) and not uri.startswith("s3://"):
                dirs[logical_id] = (template_path.parent / uri).resolve()
    return dirs


def deploy(
    emulator: Emulator,
    *,
    template_path: Path = TEMPLATE_PATH,
    stack_name: str = STACK_NAME,
    parameters: Mapping[str, str] | None = None,
) -> DeployedStack:
    """Transform and create the stack, verify it, re-apply what moto dropped, and describe it."""
    moto_hooks.apply()
    sam_template = template.load_template(template_path)
    code_dirs = _function_code_dirs(sam_template, template_path)
    if not code_dirs:
        raise RuntimeError(f"expected function code directories in {template_path}, found none")
    # One zip per code directory (src/launcher, container), each function pointed at its own.
    s3 = emulator.client("s3")
    artifacts = f"local-stack-artifacts-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=artifacts)
    for code_dir in sorted(set(code_dirs.values())):
        s3.put_object(Bucket=artifacts, Key=f"{code_dir.name}.zip", Body=package_code(code_dir))
    for logical_id, code_dir in code_dirs.items():
        properties = sam_template["Resources"][logical_id].setdefault("Properties", {})
        properties["CodeUri"] = f"s3://{artifacts}/{code_dir.name}.zip"
    with overlaid_environment(emulator.environment):  # the translator asks boto3 for the region
        transformed = template.transform(
            sam_template,
            parameter_values=dict(parameters or {}),
            code_uri=f"s3://{artifacts}/{next(iter(code_dirs.values())).name}.zip",
        )

    cloudformation = emulator.client("cloudformation")
    stack_id = cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(transformed),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Capabilities=CAPABILITIES,
    )["StackId"]
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=stack_id, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_id)
        for r in page["StackResourceSummaries"]
    }
    resources: dict[str, Any] = transformed["Resources"]
    fixer = _Fixer(emulator, stack_id, resources, physical)
    fixer.vpcs()
    fixer.subnets()
    fixer.task_definitions()
    fixer.bucket_versioning()
    routes = fixer.bucket_notifications()

    functions = [lid for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    if LAUNCHER_FUNCTION not in functions:
        raise RuntimeError(
            f"expected a Lambda function {LAUNCHER_FUNCTION} in the template, found {functions}"
        )
    fixer.function_environments(functions)
    fixer.event_invoke_configs()
    configurations = {lid: _function_configuration(emulator, physical[lid]) for lid in functions}
    rule_routes = fixer.event_rules()
    queue_mappings = fixer.event_source_mappings()
    delivered = {r.function_arn for r in routes} | {r.function_arn for r in rule_routes}
    delivered |= {m.function_arn for m in queue_mappings}
    invoke_routes = [
        fixer.invoke_route(configurations[lid].arn, code_dirs[lid])
        for lid in functions
        if configurations[lid].arn not in delivered and lid in code_dirs
    ]
    # Outputs that named a replaced resource name its replacement, as AWS's would have.
    outputs = {key: fixer.replaced.get(value, value) for key, value in outputs.items()}
    return DeployedStack(
        stack_id,
        stack_name,
        outputs,
        configurations[LAUNCHER_FUNCTION],
        routes,
        fixer.fixes,
        configurations,
        rule_routes,
        queue_mappings,
        invoke_routes,
        fixer.schedules,
    )


def _function_configuration(emulator: Emulator, function_name: str) -> FunctionConfiguration:
    lambda_client = emulator.client("lambda")
    configuration = lambda_client.get_function_configuration(FunctionName=function_name)
    try:
        invoke_config = lambda_client.get_function_event_invoke_config(FunctionName=function_name)
    except lambda_client.exceptions.ResourceNotFoundException:
        invoke_config = {}
    on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return FunctionConfiguration(
        name=configuration["FunctionName"],
        arn=configuration["FunctionArn"],
        memory_mb=int(configuration.get("MemorySize", 128)),
        timeout_s=int(configuration.get("Timeout", 3)),
        environment=dict(configuration.get("Environment", {}).get("Variables", {})),
        dead_letter_arn=configuration.get("DeadLetterConfig", {}).get("TargetArn"),
        on_failure_arn=on_failure,
        max_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
        handler=configuration["Handler"],
    )


class _Fixer:
    """Checks each property moto is known to drop and re-applies it from the template."""

    def __init__(
        self, emulator: Emulator, stack_id: str, resources: Mapping[str, Any], physical: Mapping[str, str]
    ) -> None:
        self._emulator = emulator
        self._stack_id = stack_id
        self._resources = resources
        self._physical = physical
        self.fixes: list[str] = []
        self.schedules: list[ScheduleRoute] = []
        self.replaced: dict[str, str] = {}  # old physical id -> new one

    def _of_type(self, resource_type: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for logical_id, resource in self._resources.items():
            if resource["Type"] == resource_type:
                properties = moto_hooks.resolve_in_stack(self._stack_id, resource.get("Properties", {}))
                yield logical_id, self._physical[logical_id], properties

    def vpcs(self) -> None:
        ec2 = self._emulator.client("ec2")
        for logical_id, vpc_id, properties in self._of_type("AWS::EC2::VPC"):
            for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
                if attribute not in properties:
                    continue
                wanted = _boolean(properties[attribute])
                current = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=pascal_to_camelcase(attribute))
                if current[attribute]["Value"] != wanted:
                    ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": wanted}})
                    self.fixes.append(f"{logical_id}: {attribute}={wanted}")

    def subnets(self) -> None:
        ec2 = self._emulator.client("ec2")
        for logical_id, subnet_id, properties in self._of_type("AWS::EC2::Subnet"):
            if "MapPublicIpOnLaunch" not in properties:
                continue
            wanted = _boolean(properties["MapPublicIpOnLaunch"])
            subnet = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
            if subnet.get("MapPublicIpOnLaunch") != wanted:
                ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": wanted})
                self.fixes.append(f"{logical_id}: MapPublicIpOnLaunch={wanted}")

    def task_definitions(self) -> None:
        """Re-register each task definition with all of its properties, under the same family.

        A revision cannot be changed, so the complete definition becomes the next revision and
        the incomplete one is deregistered; the function environment and outputs that named the
        old ARN are pointed at the new one (function_environments), and nothing else changes.
        """
        ecs = self._emulator.client("ecs")
        for logical_id, arn, properties in self._of_type("AWS::ECS::TaskDefinition"):
            registered = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            wanted = task_definition_request(properties)
            missing = {
                name: value
                for name, value in wanted.items()
                if registered.get(name) != value and name != "tags"
            }
            dropped = {name for name in missing if camel_to_pascal(name) not in _TASK_DEFINITION_KEPT}
            if not dropped:
                continue
            new_arn = ecs.register_task_definition(**wanted)["taskDefinition"]["taskDefinitionArn"]
            ecs.deregister_task_definition(taskDefinition=arn)
            self.replaced[arn] = new_arn
            self.fixes.append(f"{logical_id}: re-registered with {sorted(dropped)} as {new_arn}")

    def function_environments(self, functions: list[str]) -> None:
        lambda_client = self._emulator.client("lambda")
        for logical_id in functions:
            name = self._physical[logical_id]
            configuration = lambda_client.get_function_configuration(FunctionName=name)
            variables = configuration.get("Environment", {}).get("Variables", {})
            # CloudFormation passes Number parameters to Lambda as strings; moto keeps the number.
            updated = {key: self.replaced.get(str(value), str(value)) for key, value in variables.items()}
            if updated != variables:
                lambda_client.update_function_configuration(
                    FunctionName=name, Environment={"Variables": updated}
                )
                renamed = sorted(k for k in variables if str(variables[k]) in self.replaced)
                numbers = sorted(k for k in variables if not isinstance(variables[k], str))
                if renamed:
                    self.fixes.append(f"{logical_id}: {renamed} name the re-registered task definition")
                if numbers:
                    self.fixes.append(f"{logical_id}: {numbers} passed as strings, as CloudFormation does")

    def event_invoke_configs(self) -> None:
        """Retries and the on-failure destination of asynchronous invocations (moto skips them)."""
        lambda_client = self._emulator.client("lambda")
        for logical_id, resource in self._resources.items():
            if resource["Type"] != "AWS::Lambda::EventInvokeConfig":
                continue
            properties = moto_hooks.resolve_in_stack(self._stack_id, resource["Properties"])
            request = {
                name: properties[name]
                for name in (
                    "FunctionName",
                    "Qualifier",
                    "MaximumRetryAttempts",
                    "MaximumEventAgeInSeconds",
                    "DestinationConfig",
                )
                if name in properties
            }
            try:
                lambda_client.get_function_event_invoke_config(
                    FunctionName=request["FunctionName"], Qualifier=request.get("Qualifier", "$LATEST")
                )
            except lambda_client.exceptions.ResourceNotFoundException:
                lambda_client.put_function_event_invoke_config(**request)
                self.fixes.append(f"{logical_id}: event invoke config applied")

    def bucket_versioning(self) -> None:
        """The job carries the version id of the uploaded object: versioning must be as declared."""
        s3 = self._emulator.client("s3")
        for logical_id, bucket, properties in self._of_type("AWS::S3::Bucket"):
            wanted = (properties.get("VersioningConfiguration") or {}).get("Status")
            if wanted and s3.get_bucket_versioning(Bucket=bucket).get("Status") != wanted:
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": wanted})
                self.fixes.append(f"{logical_id}: versioning {wanted}")

    def bucket_notifications(self) -> list[EventRoute]:
        """The template's S3 -> Lambda notifications, delivered to a local queue per function.

        moto drops a bucket's NotificationConfiguration, and cannot invoke a Python function
        anyway; S3 -> SQS works, with the same events and the same key filters.
        """
        s3 = self._emulator.client("s3")
        sqs = self._emulator.client("sqs")
        routes: list[EventRoute] = []
        queues: dict[str, tuple[str, str]] = {}
        for logical_id, bucket, properties in self._of_type("AWS::S3::Bucket"):
            notification = properties.get("NotificationConfiguration") or {}
            unsupported = set(notification) - {"LambdaConfigurations"}
            if unsupported:
                raise RuntimeError(f"{logical_id}: the local stack does not route {sorted(unsupported)}")
            queue_configurations = []
            for configuration in notification.get("LambdaConfigurations", []):
                function_arn = configuration["Function"]
                if function_arn not in queues:
                    name = f"local-events-{function_arn.rsplit(':', 1)[-1]}"[:80]
                    url = sqs.create_queue(QueueName=name)["QueueUrl"]
                    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                    queues[function_arn] = (url, arn["Attributes"]["QueueArn"])
                queue_url, queue_arn = queues[function_arn]
                rules = configuration.get("Filter", {}).get("S3Key", {}).get("Rules", [])
                entry: dict[str, Any] = {"QueueArn": queue_arn, "Events": [configuration["Event"]]}
                if rules:
                    entry["Filter"] = {
                        "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
                    }
                queue_configurations.append(entry)
                routes.append(
                    EventRoute(
                        bucket=bucket,
                        function_arn=function_arn,
                        queue_url=queue_url,
                        queue_arn=queue_arn,
                        events=(configuration["Event"],),
                        filter_rules=tuple((r["Name"], r["Value"]) for r in rules),
                    )
                )
            if queue_configurations:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queue_configurations}
                )
                self.fixes.append(f"{logical_id}: {len(queue_configurations)} notification(s) routed to SQS")
        return routes

    def event_rules(self) -> list[RuleRoute]:
        """Rules that target a function: event-pattern rules deliver to a local queue instead.

        moto keeps each rule and its pattern (so the template's pattern decides what matches, as
        on AWS) but fails every PutEvents that reaches a Lambda target, and would match a schedule
        rule against every event. So Lambda targets are removed; a pattern rule gets an SQS target
        in their place; an enabled schedule rule is run by the local stack on a short period
        (`schedules`); a disabled one (the sweep, by default) not at all.
        """
        events = self._emulator.client("events")
        routes: list[RuleRoute] = []
        for logical_id, rule, properties in self._of_type("AWS::Events::Rule"):
            functions = [t for t in properties.get("Targets", []) if ":lambda:" in str(t["Arn"])]
            if not functions:
                continue
            events.remove_targets(Rule=rule, Ids=[str(target["Id"]) for target in functions])
            if "EventPattern" not in properties:
                self._schedule(logical_id, rule, properties, functions)
                continue
            for target in functions:
                routes.append(self._rule_queue(rule, str(target["Arn"])))
                self.fixes.append(f"{logical_id}: matching events routed to SQS for {target['Arn']}")
        return routes

    def _schedule(
        self, logical_id: str, rule: str, properties: Mapping[str, Any], targets: list[Any]
    ) -> None:
        if properties.get("State", "ENABLED") != "ENABLED":
            self.fixes.append(f"{logical_id}: disabled schedule, not run")
            return
        expression = str(properties.get("ScheduleExpression"))
        for target in targets:
            event = json.loads(str(target.get("Input", "{}")))
            self.schedules.append(ScheduleRoute(rule, str(target["Arn"]), expression, event))
        self.fixes.append(f"{logical_id}: {expression} run locally on a short period")

    def _rule_queue(self, rule: str, function_arn: str) -> RuleRoute:
        sqs = self._emulator.client("sqs")
        url = sqs.create_queue(QueueName=f"local-rule-{function_arn.rsplit(':', 1)[-1]}"[:80])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._emulator.client("events").put_targets(Rule=rule, Targets=[{"Id": "local-queue", "Arn": arn}])
        return RuleRoute(rule, function_arn, url)

    def invoke_route(self, function_arn: str, code_dir: Path) -> InvokeRoute:
        """A function nothing in the stack delivers to, only the Invoke API (the worker function)."""
        sqs = self._emulator.client("sqs")
        name = f"local-invoke-{function_arn.rsplit(':', 1)[-1]}"[:80]
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        moto_hooks.route_async_invokes(function_arn, name)
        self.fixes.append(f"{function_arn.rsplit(':', 1)[-1]}: asynchronous Invoke queued locally")
        return InvokeRoute(function_arn, url, code_dir)

    def event_source_mappings(self) -> list[QueueMapping]:
        """SQS -> function mappings: disabled in moto, delivered by a local poller (queue_poller.py)."""
        lambda_client, sqs = self._emulator.client("lambda"), self._emulator.client("sqs")
        mappings: list[QueueMapping] = []
        for logical_id, uuid_, properties in self._of_type("AWS::Lambda::EventSourceMapping"):
            source = str(properties["EventSourceArn"])
            if ":sqs:" not in source:
                raise RuntimeError(f"{logical_id}: the local stack polls SQS sources only, not {source}")
            lambda_client.update_event_source_mapping(UUID=uuid_, Enabled=False)
            queue_url = sqs.get_queue_url(QueueName=source.rsplit(":", 1)[-1])["QueueUrl"]
            function = lambda_client.get_function_configuration(FunctionName=str(properties["FunctionName"]))
            mappings.append(
                QueueMapping(
                    queue_url=queue_url,
                    function_arn=function["FunctionArn"],
                    batch_size=int(properties.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in properties.get("FunctionResponseTypes", []),
                )
            )
            self.fixes.append(f"{logical_id}: polled locally (moto would invoke through Docker)")
        return mappings


def task_definition_request(properties: Mapping[str, Any]) -> dict[str, Any]:
    """AWS::ECS::TaskDefinition properties as RegisterTaskDefinition parameters."""
    request: dict[str, Any] = {}
    for name, value in properties.items():
        request[pascal_to_camelcase(name)] = _api_keys(copy.deepcopy(value))
    if "family" not in request:
        raise ValueError("the task definition needs a Family to be re-registered under")
    for container in request.get("containerDefinitions", []):
        for numeric in ("cpu", "memory", "memoryReservation"):
            if numeric in container:
                container[numeric] = int(container[numeric])
        # A Number parameter resolves to a number; CloudFormation passes environment values as strings.
        for variable in container.get("environment", []):
            variable["value"] = str(variable["value"])
    for text in ("cpu", "memory"):  # strings in the API
        if text in request:
            request[text] = str(request[text])
    return request


def _api_keys(value: Any) -> Any:
    if isinstance(value, list):
        return [_api_keys(item) for item in value]
    if isinstance(value, dict):
        return {
            pascal_to_camelcase(key): (item if key in _VERBATIM_KEYS else _api_keys(item))
            for key, item in value.items()
        }
    return value


def camel_to_pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def _boolean(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
