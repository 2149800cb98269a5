"""Where a job runs: the worker function (asynchronous Invoke) or a Fargate task, as THUMBNAIL_RUNTIME says.

- `fargate`: a task (starter.JobStarter: started now, or queued until capacity frees).
- `lambda` and `auto`: `lambda:InvokeFunction` with InvocationType `Event`: Lambda queues the job
  and answers 202 at once ("Asynchronous invocation", Lambda developer guide); the worker function
  runs it. With `auto`, an Invoke that fails (the function missing, throttled beyond botocore's
  retries, a service error) starts the task instead, so that the job is not lost to it; with
  `lambda`, it fails the record as a RunTask failure would (the event is retried, then
  dead-lettered).

Lambda's asynchronous queue delivers at least once and Invoke has no idempotency token: a
repeated event invokes the function again, and the worker writes the same outputs again
(README "Where a job runs").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from thumbnail_launcher.jobs import Job
from thumbnail_launcher.starter import Deferred, JobStarter
from thumbnail_launcher.tasks import LaunchedTask, LaunchError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

ASYNC_ACCEPTED = 202  # Invoke's status code for InvocationType Event


@dataclass(frozen=True)
class InvokedFunction:
    """A job queued for the worker function."""

    function_name: str
    request_id: str


# A task, the worker function, or the pending-jobs queue (README "Quotas and bursts").
Started = LaunchedTask | InvokedFunction | Deferred


@dataclass
class JobDispatcher:
    """`launch(job)` as JobStarter's, with the worker function first unless the runtime is fargate."""

    tasks: JobStarter
    functions: LambdaClient | None
    # (key, why) of each job `auto` meant for the function whose Invoke failed: a task took it.
    invoke_failures: list[tuple[str, str]] = field(default_factory=list)

    def launch(self, job: Job) -> Started:
        settings = self.tasks.settings
        if settings.runtime == "fargate" or self.functions is None:
            return self.tasks.launch(job)
        try:
            return self._invoke(job)
        except LaunchError as error:
            if settings.runtime != "auto":
                raise
            self.invoke_failures.append((job.key, error.reason))
            return self.tasks.launch(job)

    def _invoke(self, job: Job) -> InvokedFunction:
        name = self.tasks.settings.worker_function_name
        assert self.functions is not None
        try:
            response = self.functions.invoke(
                FunctionName=name, InvocationType="Event", Payload=job.to_json().encode()
            )
        except (ClientError, BotoCoreError) as error:
            raise LaunchError(f"Invoke of {name} failed: {error}") from error
        status = response.get("StatusCode")
        if status != ASYNC_ACCEPTED:
            raise LaunchError(f"Invoke of {name} answered {status}, not {ASYNC_ACCEPTED}")
        request_id = str(response.get("ResponseMetadata", {}).get("RequestId", ""))
        return InvokedFunction(name, request_id)
