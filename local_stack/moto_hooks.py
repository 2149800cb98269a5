"""The only places where the local stack reaches into moto itself, kept together and small.

- RunTask idempotency. AWS returns the tasks of an earlier RunTask that carried the same
  `clientToken` instead of starting new ones; moto 5.2.5 ignores the token, so a duplicated
  S3 event would start two workers here and only one on AWS. `honour_run_task_client_token`
  patches moto's ECS response handler to keep AWS's behaviour, and gives tasks the `createdAt`
  AWS reports, by which the launcher tells a repeat from a new start.
- The Fargate vCPU quota. AWS refuses a RunTask whose task would take the account's running
  Fargate vCPUs over its quota ("Fargate On-Demand vCPU resource count"); moto has no quota.
  `set_vcpu_quota` gives one emulator a quota, which the same RunTask patch enforces in AWS's
  shape (`VCPU_LIMIT_REASON`).
- Generated ECR repository names. CloudFormation names an unnamed AWS::ECR::Repository in
  lower case, as ECR requires; moto 5.2.5 keeps the stack's and logical id's capitals and then
  rejects its own name. `lowercase_generated_ecr_names` lower-cases that one generated name.
- Resolving template properties inside a deployed stack with the intrinsic-function engine
  moto used to create it, so what moto dropped can be re-applied from the template's own
  properties (see deploy.py).
- Asynchronous Invoke (InvocationType Event). Lambda queues the event and answers 202; moto
  5.2.5 would run the function in Docker. `queue_async_invokes` routes the event of an Invoke of
  a function given to `route_async_invokes` into a local SQS queue instead, from which the local
  Lambda runner (lambda_runner.py) runs it in the function's own process.

All of them work only while the emulator runs in this process (`running_emulator()` does that).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from moto.awslambda.responses import LambdaResponse
from moto.cloudformation import parsing
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.parsing import clean_json
from moto.core.utils import utcnow
from moto.ecs.responses import EC2ContainerServiceResponse

from local_stack.task_events import task_size

_lock = threading.Lock()
_patched: set[str] = set()
# (account, region, cluster, clientToken) -> the task ARNs the first call started.
_tasks_by_token: dict[tuple[str, str, str, str], list[str]] = {}
# function ARN -> the name of the local SQS queue its asynchronous invocations go to.
_async_routes: dict[str, str] = {}
# emulator port -> its Fargate vCPU quota (none: unlimited, as moto is), and the tasks RunTask
# started through it: each emulator is an account of its own, though moto's state is per process.
_vcpu_quotas: dict[str, float] = {}
_tasks_by_port: dict[str, list[Any]] = {}

# RunTask over the quota answers HTTP 200 with no task and one failure per task asked for:
# `{"tasks": [], "failures": [{"arn": ..., "reason": VCPU_LIMIT_REASON}]}`. The failures list is
# how RunTask reports a task it could not place (apache/airflow#22255 shows a real RunTask answer,
# 200 with tasks [] and failures [{"arn", "reason": "RESOURCE:CPU"}]); the reason is the text
# the ECS developer guide gives for the vCPU quota ("Amazon ECS service event messages":
# "You've reached the limit on the number of vCPUs you can run concurrently"). Which ARN AWS
# names for this failure is not documented: here, the cluster's. See docs/emulator-gaps.md.
VCPU_LIMIT_REASON = "You've reached the limit on the number of vCPUs you can run concurrently"


def apply() -> None:
    """Every fidelity patch below, once per process."""
    honour_run_task_client_token()
    lowercase_generated_ecr_names()
    queue_async_invokes()


def set_vcpu_quota(endpoint_url: str, vcpus: float | None) -> None:
    """RunTask through this emulator refuses a task that would take the running (not STOPPED)
    tasks' vCPUs over `vcpus` (None: no quota). Needs `honour_run_task_client_token` (apply())."""
    port = str(urlsplit(endpoint_url).port)
    with _lock:
        if vcpus is None:
            _vcpu_quotas.pop(port, None)
            _tasks_by_port.pop(port, None)
        else:
            _vcpu_quotas[port] = float(vcpus)
            _tasks_by_port.setdefault(port, [])


def route_async_invokes(function_arn: str, queue_name: str) -> None:
    """Asynchronous invocations of this function go to this queue (of the same account and region)."""
    with _lock:
        _async_routes[function_arn] = queue_name


def queue_async_invokes() -> None:
    with _lock:
        if "async-invoke" in _patched:
            return
        original = LambdaResponse.invoke

        def invoke(self: LambdaResponse) -> Any:
            if self.headers.get("X-Amz-Invocation-Type") != "Event":
                return original(self)
            from moto.sqs.models import sqs_backends

            name = unquote(self.path.rsplit("/", 2)[-2])
            function = self.backend.get_function(name, self._get_param("qualifier"))
            queue = _async_routes.get(function.function_arn)
            if queue is None:
                return original(self)
            body = self.body.decode() if isinstance(self.body, bytes) else str(self.body or "")
            sqs_backends[self.current_account][self.region].send_message(queue, body)
            request_id = str(uuid.uuid4())
            return (
                202,
                {"status": "202", "x-amzn-RequestId": request_id, "content-type": "application/json"},
                "",
            )

        LambdaResponse.invoke = invoke  # type: ignore[method-assign]
        _patched.add("async-invoke")


def lowercase_generated_ecr_names() -> None:
    with _lock:
        if "ecr-names" in _patched:
            return
        original = parsing.generate_resource_name

        def generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
            name = original(resource_type, stack_name, logical_id)
            return name.lower() if resource_type == "AWS::ECR::Repository" else name

        parsing.generate_resource_name = generate_resource_name
        _patched.add("ecr-names")


def honour_run_task_client_token() -> None:
    """Make moto's RunTask idempotent on clientToken, as AWS is. Safe to call more than once."""
    with _lock:
        if "run-task-client-token" in _patched:
            return
        original = EC2ContainerServiceResponse.run_task

        def run_task(self: EC2ContainerServiceResponse) -> Any:
            token = self._get_param("clientToken")
            if not token:
                with _lock:
                    return _within_vcpu_quota(self, original)
            cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
            slot = (self.current_account, self.region, cluster.name, str(token))
            with _lock:
                known = _tasks_by_token.get(slot)
                started = self.ecs_backend.tasks.get(cluster.name, {})
                if known and all(arn in started for arn in known):
                    return _action_result({"tasks": [started[arn] for arn in known], "failures": []})
                # A refused RunTask started nothing: the same token may start its task later.
                result = _within_vcpu_quota(self, original)
                for task in started_tasks(result):
                    # moto's tasks lack createdAt, by which a caller tells a repeated RunTask from a new one.
                    task.created_at = utcnow()
                _tasks_by_token[slot] = [task.task_arn for task in started_tasks(result)]
                return result

        EC2ContainerServiceResponse.run_task = run_task  # type: ignore[method-assign]
        _patched.add("run-task-client-token")


def _within_vcpu_quota(response: EC2ContainerServiceResponse, run_task: Any) -> Any:
    """moto's RunTask, unless the emulator's vCPU quota refuses it (AWS's failure shape). Under _lock."""
    port = str(response.headers.get("Host") or "").rpartition(":")[2]
    quota = _vcpu_quotas.get(port)
    if quota is None:
        return run_task(response)
    backend = response.ecs_backend
    count = response._get_int_param("count", 1) or 1
    asked = count * _vcpus(backend, response._get_param("taskDefinition"), response._get_param("overrides"))
    # The quota is the account's: the tasks of every cluster count until they are stopped. (The
    # desired status: moto's lastStatus drifts on DescribeTasks unless pinned; StopTask sets both.)
    started = _tasks_by_port[port] = [t for t in _tasks_by_port[port] if t.desired_status != "STOPPED"]
    running = sum(_vcpus(backend, task.task_definition_arn, task.overrides) for task in started)
    if running + asked <= quota + 1e-9:
        result = run_task(response)
        started.extend(started_tasks(result))
        return result
    cluster = backend._get_cluster(response._get_param("cluster", "default"))
    failure = {"arn": cluster.arn, "reason": VCPU_LIMIT_REASON}
    return _action_result({"tasks": [], "failures": [dict(failure) for _ in range(count)]})


def _vcpus(backend: Any, task_definition: str, overrides: dict[str, Any] | None) -> float:
    """A task's vCPUs: the RunTask `cpu` override, else the task definition's (task_events.task_size)."""
    definition = backend.describe_task_definition(task_definition)
    cpu, _ = task_size({"overrides": overrides or {}}, {"cpu": definition.cpu, "memory": definition.memory})
    return cpu / 1024


def started_tasks(result: Any) -> list[Any]:
    """The Task models inside moto's RunTask ActionResult."""
    return list(result.result["tasks"])


def _action_result(payload: dict[str, Any]) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult(payload)


def resolve_in_stack(stack_id: str, value: Any) -> Any:
    """`value` (template JSON with Ref/GetAtt/Sub/If...) resolved as moto resolved the stack."""
    account_id, region = _account_and_region(stack_id)
    stack = cloudformation_backends[account_id][region].stacks[stack_id]
    return clean_json(value, stack.resource_map)


def _account_and_region(stack_id: str) -> tuple[str, str]:
    # arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
    parts = stack_id.split(":")
    return parts[4], parts[3]
