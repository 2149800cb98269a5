"""Lambda, locally: hand every S3 event from the local queue to the real launcher, in-process.

S3 notifies an SQS queue in the emulator with the template's own filters (deploy.py); this pump
receives each message and invokes `src/launcher/app.lambda_handler` as Lambda would invoke it
asynchronously: the event as S3 sent it, a Lambda context, and the function's environment
exactly as the stack resolved it (plus the runtime's reserved variables, here pointing at the
emulator). A failed invocation is retried as the function's EventInvokeConfig says, then goes
to its on-failure destination, as Lambda's asynchronous invocation does.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from devkit.environment import exact_environment, process_basics
from local_stack.emulator import Emulator
from local_stack.loops import Loop

LOG = logging.getLogger(__name__)
RETRY_DELAY_S = 1  # AWS waits about a minute, then two; a second keeps tests quick


@dataclass(frozen=True)
class FunctionConfiguration:
    """What the pump needs to know about the deployed launcher function."""

    name: str
    arn: str
    memory_mb: int
    timeout_s: int
    environment: Mapping[str, str]
    dead_letter_arn: str | None = None  # DeadLetterConfig: the event alone
    on_failure_arn: str | None = None  # EventInvokeConfig OnFailure: event, error and context
    max_retry_attempts: int = 2
    handler: str = "app.lambda_handler"


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_s: int

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_s * 1000


@dataclass
class Invocation:
    """One handler call: what came in and how it ended."""

    request_id: str
    event: Mapping[str, Any]
    attempt: int
    error: str | None = None
    result: Any = None
    error_type: str | None = None  # Lambda's errorType: the exception's class, Sandbox.Timedout...


@dataclass
class PumpRecord:
    invocations: list[Invocation] = field(default_factory=list)
    dead_lettered: int = 0


def runtime_environment(function: FunctionConfiguration, emulator: Emulator) -> dict[str, str]:
    """The environment a Lambda execution environment gives the function's process."""
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": "/var/task",
        **emulator.environment,  # the execution role's credentials and the region, locally
    }
    # The function's own variables last: exactly what the template resolved to, nothing else.
    return {**process_basics(), **reserved, **function.environment}


def load_handler(handler: str) -> Callable[[Mapping[str, Any], Any], Any]:
    """`module.function` from the function's Handler setting, imported as Lambda does."""
    module_name, _, function_name = handler.rpartition(".")
    module = importlib.import_module(module_name)
    function: Callable[[Mapping[str, Any], Any], Any] = getattr(module, function_name)
    return function


def reset_launcher_caches() -> None:
    """A cold start: forget the settings and clients a previous execution environment cached.

    The launcher caches them with functools (settings.get_settings and its lazy clients);
    clearing every such cache in its modules keeps this independent of their names.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "app" or name.split(".")[0] == "thumbnail_launcher"):
            continue
        for attribute in list(vars(module).values()):
            cache_clear = getattr(attribute, "cache_clear", None)
            if callable(cache_clear) and getattr(attribute, "__module__", None) == name:
                cache_clear()


class EventPump:
    """Receives S3 events from the local queue and invokes the launcher for each."""

    def __init__(
        self,
        emulator: Emulator,
        queue_url: str,
        function: FunctionConfiguration,
        *,
        poll_wait_s: int = 1,
        log_path: Path | None = None,
    ) -> None:
        self._emulator = emulator
        self.sqs = self._sqs = emulator.client("sqs")
        self._queue_url = queue_url
        self._function = function
        self._poll_wait_s = poll_wait_s
        self._env = runtime_environment(function, emulator)
        self._loop = Loop("event pump", self._pump_once)
        self._lock = threading.Lock()
        self._busy = False
        self.record = PumpRecord()
        self.errors = self._loop.errors
        self._handler: Callable[[Mapping[str, Any], Any], Any] | None = None
        self._log_path = log_path
        self._log: IO[str] | None = None

    def start(self) -> EventPump:
        module_name = self._function.handler.rpartition(".")[0]
        imported_before = module_name in sys.modules
        with exact_environment(self._env), ExitStack() as logs:
            if self._log_path is not None:
                # Lambda sends the function's stdout to CloudWatch Logs: here, to a file. Loggers
                # (Powertools) bind the stream when the module is imported, at this cold start.
                self._log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = self._log_path.open("a", encoding="utf-8", buffering=1)
                logs.enter_context(redirect_stdout(self._log))
            reset_launcher_caches()  # cold start, with the function's environment in place
            self._handler = load_handler(self._function.handler)
        if imported_before and self._log is not None:
            _rebind_logger(sys.modules[module_name], self._log)  # an earlier stack's import
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()
        with exact_environment(self._env):
            reset_launcher_caches()  # leave no client bound to this emulator behind
        # The log file stays open: a logger imported at this cold start still holds it.

    def idle(self) -> bool:
        """Nothing in flight and nothing waiting in the queue (visible or being retried)."""
        with self._lock:
            if self._busy:
                return False
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    def invoke(self, event: Mapping[str, Any], attempt: int = 1) -> Invocation:
        """Call the handler once with `event`, as one Lambda invocation."""
        if self._handler is None:
            raise RuntimeError("start() the pump first")
        request_id = str(uuid.uuid4())
        context = LambdaContext(
            function_name=self._function.name,
            function_version="$LATEST",
            invoked_function_arn=self._function.arn,
            memory_limit_in_mb=self._function.memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{self._function.name}",
            log_stream_name=f"local/[$LATEST]{request_id.replace('-', '')}",
            timeout_s=self._function.timeout_s,
        )
        invocation = Invocation(request_id, event, attempt)
        with exact_environment(self._env), ExitStack() as logs:
            if self._log is not None:  # print()ed output (Powertools metrics) to the log too
                logs.enter_context(redirect_stdout(self._log))
            try:
                invocation.result = self._handler(event, context)
            except Exception as error:  # a function error: Lambda records it and retries
                LOG.warning("launcher invocation %s failed (attempt %d): %r", request_id, attempt, error)
                invocation.error = repr(error)
                invocation.error_type = type(error).__name__
        with self._lock:
            self.record.invocations.append(invocation)
        return invocation

    def _pump_once(self) -> None:
        received = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self._poll_wait_s,
            VisibilityTimeout=max(self._function.timeout_s, 5),
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        for message in received.get("Messages", []):
            with self._lock:
                self._busy = True
            try:
                self._deliver(message)
            finally:
                with self._lock:
                    self._busy = False

    def _deliver(self, message: Mapping[str, Any]) -> None:
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        event = json.loads(message["Body"])
        invocation = self.invoke(event, attempt)
        if invocation.error is None:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        elif attempt > self._function.max_retry_attempts:
            self._give_up(event, invocation)
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=RETRY_DELAY_S,
            )

    def _give_up(self, event: Mapping[str, Any], invocation: Invocation) -> None:
        """Retries exhausted: the on-failure destination gets Lambda's invocation record."""
        with self._lock:
            self.record.dead_lettered += 1
        if self._function.on_failure_arn:
            target, body = (
                self._function.on_failure_arn,
                json.dumps(_failure_record(self._function, event, invocation)),
            )
        elif self._function.dead_letter_arn:
            target, body = self._function.dead_letter_arn, json.dumps(event)
        else:
            LOG.error("event dropped after %d attempts (no failure destination)", invocation.attempt)
            return
        if ":sqs:" not in target:
            LOG.error("event dropped: only SQS failure destinations are emulated, not %s", target)
            return
        queue_url = self._sqs.get_queue_url(QueueName=target.rsplit(":", 1)[-1])["QueueUrl"]
        self._sqs.send_message(QueueUrl=queue_url, MessageBody=body)


def _rebind_logger(module: Any, stream: IO[str]) -> None:
    """Point the module's Powertools logger at this stack's log: it kept the stream of the stack
    (of this process) that imported the module first."""
    handler = getattr(getattr(module, "logger", None), "registered_handler", None)
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)


def _failure_record(
    function: FunctionConfiguration, event: Mapping[str, Any], invocation: Invocation
) -> dict[str, Any]:
    """The record Lambda sends to an asynchronous invocation's on-failure destination."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": f"{function.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invocation.attempt,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": invocation.error, "errorType": invocation.error_type or "Error"},
    }
