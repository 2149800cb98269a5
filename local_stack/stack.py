"""The whole pipeline offline: emulator + deployed template + event pumps + task runner.

The launcher's pump delivers S3 events; the recovery function's pump delivers the stopped-task
events the template's rule matches, and a poller its retry queue, as Lambda would; a Lambda
runner runs the worker function's asynchronous invocations in processes of their own.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from local_stack import moto_hooks
from local_stack.deploy import STACK_NAME, TEMPLATE_PATH, DeployedStack, deploy
from local_stack.emulator import Emulator, running_emulator
from local_stack.events import EventPump, Invocation
from local_stack.faults import FaultPlan
from local_stack.lambda_runner import LambdaRun, LambdaRunner
from local_stack.queue_poller import QueuePoller
from local_stack.schedules import LocalSchedule
from local_stack.task_runner import TaskOutcome, TaskRunner, container_setting

LOG = logging.getLogger(__name__)
_THUMBNAIL_NAME = re.compile(r"(?:\d+w\.)?(?:jpeg|jpg|png|webp)")


@dataclass(frozen=True)
class Result:
    """What the pipeline produced for one video."""

    key: str
    manifest_key: str
    manifest: Mapping[str, Any]
    thumbnail_keys: tuple[str, ...]
    outcomes: tuple[TaskOutcome, ...]  # the tasks that ran for this key (one, normally)
    lambda_runs: tuple[LambdaRun, ...] = ()  # the worker function's invocations for this key

    @property
    def runtime(self) -> str | None:
        """Where the job that wrote the manifest ran: the manifest's own word (lambda, fargate)."""
        value = self.manifest.get("runtime")
        return None if value is None else str(value)


def parse_metadata(text: str | None) -> dict[str, str]:
    """`name=value,name=value` (the Makefile's META=) as S3 user metadata.

    A part without `=` continues the previous value, so `thumbnail-widths=320,1280` stays whole.
    """
    metadata: dict[str, str] = {}
    name = ""
    for part in filter(None, (part.strip() for part in (text or "").split(","))):
        key, separator, value = part.partition("=")
        if separator and key.strip():
            name = key.strip().lower()
            metadata[name] = value.strip()
        elif name:
            metadata[name] += "," + part
        else:
            raise ValueError(f"metadata must be name=value pairs separated by commas, got {part!r}")
    return metadata


class LocalStack:
    """Context manager: everything it starts, it stops.

    >>> with LocalStack() as stack:
    ...     stack.upload(Path("clip.mp4"), "videos/clip.mp4")
    ...     result = stack.wait_for("videos/clip.mp4")
    """

    def __init__(
        self,
        *,
        template_path: Path = TEMPLATE_PATH,
        parameters: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        max_parallel_tasks: int = 2,
        task_timeout_s: float = 300.0,
        use_docker: bool = False,
        port: int = 0,
        faults: FaultPlan | None = None,
        stack_name: str = STACK_NAME,
        vcpu_quota: float | None = None,
        schedule_interval_s: float = 2.0,
        task_start_delay_s: float = 0.0,
    ) -> None:
        """`stack_name`: moto's state is per process, so two stacks in one process need two names.

        `vcpu_quota`: the account's Fargate vCPU quota, which RunTask enforces as ECS does
        (moto_hooks.set_vcpu_quota); None: unlimited.
        `schedule_interval_s`: how often the template's enabled schedule rules run here.
        `task_start_delay_s`: how long a task waits, RUNNING, before its worker starts (Fargate's
        start-up, scaled; the task runner's `start_delay_s`).
        """
        self._template_path = template_path
        self._parameters = dict(parameters or {})
        self._work_dir = work_dir
        self._max_parallel_tasks = max_parallel_tasks
        self._task_timeout_s = task_timeout_s
        self._use_docker = use_docker
        self._port = port
        self._faults = faults
        self._stack_name = stack_name
        self._vcpu_quota = vcpu_quota
        self._schedule_interval_s = schedule_interval_s
        self._task_start_delay_s = task_start_delay_s
        self._exit = ExitStack()
        self._emulator: Emulator | None = None
        self._deployed: DeployedStack | None = None
        self._pump: EventPump | None = None
        self._runner: TaskRunner | None = None
        self._recovery: list[EventPump | QueuePoller] = []
        self._lambda_runners: list[LambdaRunner] = []

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit.close()

    def _start(self) -> None:
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="local-stack-"))
            self._exit.callback(shutil.rmtree, self._work_dir, ignore_errors=True)
        self._emulator = self._exit.enter_context(running_emulator(port=self._port))
        if self._vcpu_quota is not None:
            moto_hooks.set_vcpu_quota(self._emulator.endpoint_url, self._vcpu_quota)
            self._exit.callback(moto_hooks.set_vcpu_quota, self._emulator.endpoint_url, None)
        self._deployed = deploy(
            self._emulator,
            template_path=self._template_path,
            stack_name=self._stack_name,
            parameters=self._parameters,
        )
        for fix in self._deployed.fixes:
            LOG.info("re-applied what the emulator dropped: %s", fix)
        self._runner = TaskRunner(
            self._emulator,
            self._deployed.outputs["ClusterArn"],
            self._work_dir / "task-logs",
            max_parallel=self._max_parallel_tasks,
            timeout_s=self._task_timeout_s,
            use_docker=self._use_docker,
            faults=self._faults,
            start_delay_s=self._task_start_delay_s,
        ).start()
        self._exit.callback(self._runner.stop)
        self._start_recovery()
        self._start_lambda_runners()
        self._pump = EventPump(
            self._emulator,
            self._deployed.event_queue_url,
            self._deployed.function,
            log_path=self._work_dir / "launcher.log",
        ).start()
        self._exit.callback(self._pump.stop)

    def _start_recovery(self) -> None:
        """The rule's stopped-task events and the retry queue, each to its function."""
        by_arn = {function.arn: function for function in self.deployed.functions.values()}
        work_dir = self._work_dir or Path(tempfile.gettempdir())
        pumps: dict[str, EventPump] = {}
        for route in self.deployed.rule_routes:
            function = by_arn[route.function_arn]
            pump = EventPump(
                self.emulator,
                route.queue_url,
                function,
                log_path=work_dir / f"{_log_name(function.handler)}.log",
            )
            pumps[route.function_arn] = pump.start()
            self._exit.callback(pump.stop)
            self._recovery.append(pump)
        for mapping in self.deployed.queue_mappings:
            poller = QueuePoller(pumps[mapping.function_arn], mapping).start()
            self._exit.callback(poller.stop)
            self._recovery.append(poller)
        for scheduled in self.deployed.schedule_routes:
            schedule = LocalSchedule(
                pumps[scheduled.function_arn], scheduled, interval_s=self._schedule_interval_s
            )
            self._exit.callback(schedule.start().stop)

    def _start_lambda_runners(self) -> None:
        """The functions only the Invoke API reaches (the worker function), each in its processes."""
        by_arn = {function.arn: function for function in self.deployed.functions.values()}
        for route in self.deployed.invoke_routes:
            runner = LambdaRunner(
                self.emulator,
                route,
                by_arn[route.function_arn],
                log_dir=self.work_dir / "lambda-logs",
                max_environments=self._max_parallel_tasks,
                faults=self._faults,
            ).start()
            self._exit.callback(runner.stop)
            self._lambda_runners.append(runner)

    # -- what is running -------------------------------------------------------------------
    @property
    def emulator(self) -> Emulator:
        assert self._emulator is not None, "use LocalStack as a context manager"
        return self._emulator

    @property
    def deployed(self) -> DeployedStack:
        assert self._deployed is not None, "use LocalStack as a context manager"
        return self._deployed

    @property
    def pump(self) -> EventPump:
        assert self._pump is not None, "use LocalStack as a context manager"
        return self._pump

    @property
    def work_dir(self) -> Path:
        """Where the logs are: launcher.log, recovery.log, task-logs/."""
        assert self._work_dir is not None, "use LocalStack as a context manager"
        return self._work_dir

    @property
    def runner(self) -> TaskRunner:
        assert self._runner is not None, "use LocalStack as a context manager"
        return self._runner

    @property
    def outputs(self) -> Mapping[str, str]:
        return self.deployed.outputs

    @property
    def bucket(self) -> str:
        return self.outputs["BucketName"]

    def worker_setting(self, name: str) -> str:
        """A variable of the worker's container environment, as the task definition holds it."""
        return container_setting(self.emulator.client("ecs"), self.outputs["TaskDefinitionArn"], name)

    # -- using it --------------------------------------------------------------------------
    def upload(self, source: Path | bytes, key: str, metadata: Mapping[str, str] | None = None) -> None:
        """Put a video into the stack's bucket, as a user would."""
        s3 = self.emulator.client("s3")
        body = source if isinstance(source, bytes) else source.read_bytes()
        s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=dict(metadata or {}))

    def manifest_key(self, key: str) -> str:
        video_prefix, output_prefix = (
            self.worker_setting("VIDEO_PREFIX"),
            self.worker_setting("OUTPUT_PREFIX"),
        )
        rest = key.removeprefix(video_prefix)
        return f"{output_prefix}{rest}.json"

    def manifest(self, key: str) -> dict[str, Any]:
        """The manifest (or error manifest) the pipeline wrote for `key` (NoSuchKey when none)."""
        s3 = self.emulator.client("s3")
        body = s3.get_object(Bucket=self.bucket, Key=self.manifest_key(key))["Body"].read()
        document: dict[str, Any] = json.loads(body)
        return document

    def outcomes_for(self, key: str) -> tuple[TaskOutcome, ...]:
        """The tasks that ran a job for `key` (a batch task's other jobs included)."""
        return tuple(o for o in self.runner.outcomes.values() if key in o.keys)

    def lambda_runs_for(self, key: str) -> tuple[LambdaRun, ...]:
        return tuple(run for runner in self._lambda_runners for run in runner.runs_for(key))

    @property
    def lambda_runners(self) -> tuple[LambdaRunner, ...]:
        return tuple(self._lambda_runners)

    def wait_for(self, key: str, timeout_s: float = 120.0) -> Result:
        """Wait until a task or a worker function invocation for `key` has ended and its manifest is in
        the bucket."""
        s3 = self.emulator.client("s3")
        manifest_key = self.manifest_key(key)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            outcomes, runs = self.outcomes_for(key), self.lambda_runs_for(key)
            if outcomes or runs:
                try:
                    body = s3.get_object(Bucket=self.bucket, Key=manifest_key)["Body"].read()
                except s3.exceptions.NoSuchKey:
                    body = None
                if body is not None:
                    return Result(
                        key, manifest_key, json.loads(body), self.thumbnail_keys(key), outcomes, runs
                    )
            time.sleep(0.2)
        raise TimeoutError(
            f"no thumbnails for {key!r} after {timeout_s:.0f} s "
            f"(tasks seen {self.runner.started_count()}, finished {len(self.runner.outcomes)}, "
            f"pump errors {self.pump.errors}, runner errors {self.runner.errors})"
        )

    def thumbnail_keys(self, key: str) -> tuple[str, ...]:
        stem = self.manifest_key(key).removesuffix(".json") + "."
        s3 = self.emulator.client("s3")
        found = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=stem)
            for item in page.get("Contents", [])
            if _THUMBNAIL_NAME.fullmatch(item["Key"][len(stem) :])
        ]
        return tuple(sorted(found))

    def wait_idle(self, timeout_s: float = 120.0) -> None:
        """Wait until no event is queued or being handled and no task is running."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # Idle pump, idle runner, and still an idle pump: no event slipped in between.
            if (
                self._events_idle()
                and self.runner.wait_idle(max(0.1, deadline - time.monotonic()))
                and self._events_idle()
            ):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the local stack was still busy after {timeout_s:.0f} s")

    def recovery_invocations(self) -> list[Invocation]:
        """Every invocation of the recovery function so far (its events and results)."""
        return [i for part in self._recovery if isinstance(part, EventPump) for i in part.record.invocations]

    def pending_jobs(self) -> int:
        """Jobs in the pending-jobs queue: waiting for capacity, or received by a drain."""
        attributes = self.emulator.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs["PendingJobsQueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def _events_idle(self) -> bool:
        parts = [*self._recovery, *self._lambda_runners]
        return self.pump.idle() and all(part.idle() for part in parts) and self.pending_jobs() == 0


def _log_name(handler: str) -> str:
    """recovery_app.lambda_handler -> recovery (the log file beside launcher.log)."""
    return handler.partition(".")[0].removesuffix("_app")
