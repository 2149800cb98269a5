"""Lambda, locally, for a function the stack only invokes through the API (the worker function).

The launcher calls the real `lambda:Invoke` (InvocationType Event); moto_hooks.py queues the event
in a local SQS queue instead of answering it through Docker (docs/emulator-gaps.md). This runner
takes each queued event and runs the function's handler as Lambda would:

- in execution environments of their own: a process per environment (lambda_bootstrap.py) with
  the function's code directory first on the path, its environment as the stack resolved it
  (events.runtime_environment) and the emulator's credentials; the first invocation of an
  environment is a cold start (init: the imports), the next ones reuse it (warm), up to
  `max_environments` at once;
- within the function's limits: its timeout (the environment is killed: `Sandbox.Timedout`) and
  its memory, enforced on the environment's RSS by the task runner's watchdog (killed:
  `Runtime.OutOfMemory`); a killed environment is never reused;
- with its EventInvokeConfig: a failed invocation is retried MaximumRetryAttempts times, then its
  record goes to the on-failure destination (events.EventPump's delivery, reused).

A FaultPlan (faults.py) may starve the first attempt of a key of memory (out_of_memory), stall
its S3 (hang: the function times out) or refuse it (transient_exit_1: the worker exits 1); such
an invocation runs in an environment of its own, discarded after it.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from local_stack.deploy import InvokeRoute
from local_stack.emulator import Emulator
from local_stack.events import EventPump, FunctionConfiguration, Invocation
from local_stack.faults import FaultKind, FaultPlan, StalledEndpoint, closed_port_url
from local_stack.task_runner import STARVED_MEMORY_MIB, WATCH_INTERVAL_S, over_memory

LOG = logging.getLogger(__name__)
BOOTSTRAP = Path(__file__).resolve().with_name("lambda_bootstrap.py")
INIT_LIMIT_S = 10.0  # Lambda's init phase limit (Lambda developer guide, "execution environment lifecycle")


@dataclass(frozen=True)
class LambdaRun:
    """One invocation the runner ran: for tests, the demo and the latency benchmark."""

    request_id: str
    job: Mapping[str, Any]
    attempt: int
    cold: bool
    init_ms: float
    duration_ms: float
    error_type: str | None
    result: Any
    log_path: Path
    fault: str | None = None

    @property
    def key(self) -> str | None:
        return self.job.get("key") if isinstance(self.job, Mapping) else None


class ExecutionEnvironment:
    """One process that runs the handler, invocation after invocation, until it is killed."""

    def __init__(self, function: FunctionConfiguration, code_dir: Path, env: Mapping[str, str], log: Path):
        read_fd, write_fd = os.pipe()
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log
        self._function = function
        self._memory_limit = function.memory_mb * 1024 * 1024
        self._workdir = tempfile.TemporaryDirectory(prefix="lambda-env-")  # Lambda's /tmp
        process_env = {**env, "PYTHONPATH": str(code_dir), "TMPDIR": self._workdir.name}
        with log.open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [sys.executable, str(BOOTSTRAP), function.handler, str(write_fd)],
                env=process_env,
                cwd=self._workdir.name,
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
            )
        os.close(write_fd)
        self._results: IO[str] = os.fdopen(read_fd, encoding="utf-8")
        self.invocations = 0
        self.init_ms = 0.0
        self.error: tuple[str, str] | None = None  # (errorType, errorMessage) of a killed environment

    def start(self) -> dict[str, Any] | None:
        """The init phase; None when it failed (the environment is dead)."""
        ready = self._read(INIT_LIMIT_S, "init")
        if ready is not None:
            self.init_ms = float(ready.get("init_ms", 0.0))
        return ready

    def invoke(self, request_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        request = {
            "request_id": request_id,
            "event": event,
            "timeout_s": self._function.timeout_s,
            "function_name": self._function.name,
            "function_arn": self._function.arn,
            "memory_mb": self._function.memory_mb,
        }
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        self.invocations += 1
        answer = self._read(float(self._function.timeout_s), request_id)
        if answer is None:
            error_type, message = self.error or ("Runtime.ExitError", "the environment ended")
            return {"request_id": request_id, "errorType": error_type, "errorMessage": message}
        return answer

    @property
    def alive(self) -> bool:
        return self.error is None and self.process.poll() is None

    def _read(self, limit_s: float, what: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._results], [], [], WATCH_INTERVAL_S)
            if ready:
                line = self._results.readline()
                if line:
                    answer: dict[str, Any] = json.loads(line)
                    return answer
                self._ended(what)
                return None
            if over_memory(self.process, self._memory_limit):
                self._kill(
                    "Runtime.OutOfMemory",
                    f"RequestId: {what} Error: Runtime exited with error: signal: killed",
                )
                return None
            if self.process.poll() is not None:
                self._ended(what)
                return None
        self._kill("Sandbox.Timedout", f"RequestId: {what} Error: Task timed out after {limit_s:.2f} seconds")
        return None

    def _ended(self, what: str) -> None:
        self.error = (
            "Runtime.ExitError",
            f"RequestId: {what} Error: Runtime exited with error: exit status {self.process.poll()}",
        )

    def _kill(self, error_type: str, message: str) -> None:
        self.error = (error_type, message)
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        self._results.close()
        self._workdir.cleanup()


class LambdaRunner(EventPump):
    """Delivers the queued asynchronous invocations of one function to its execution environments."""

    def __init__(
        self,
        emulator: Emulator,
        route: InvokeRoute,
        function: FunctionConfiguration,
        *,
        log_dir: Path,
        max_environments: int = 2,
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(emulator, route.queue_url, function)
        self._code_dir = route.code_dir
        self._log_dir = log_dir
        self._faults = faults
        self._stalled = StalledEndpoint() if faults is not None else None
        self._warm: list[ExecutionEnvironment] = []
        self._slots = threading.Semaphore(max_environments)
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=max_environments, thread_name_prefix="lambda")
        self.runs: list[LambdaRun] = []

    def start(self) -> LambdaRunner:
        self._loop.start()  # no handler in this process: each environment imports its own
        return self

    def stop(self) -> None:
        self._loop.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            warm, self._warm = self._warm, []
        for environment in warm:
            environment.close()
        if self._stalled is not None:
            self._stalled.close()

    def idle(self) -> bool:
        with self._lock:
            if self._in_flight:
                return False
        return super().idle()

    def runs_for(self, key: str) -> tuple[LambdaRun, ...]:
        with self._lock:
            return tuple(run for run in self.runs if run.key == key)

    def _pump_once(self) -> None:
        if not self._slots.acquire(timeout=0.5):
            return
        try:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=self._poll_wait_s,
                VisibilityTimeout=int(self._function.timeout_s + INIT_LIMIT_S + 5),
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
        except Exception:
            self._slots.release()
            raise
        if not messages:
            self._slots.release()
            return
        # Until here the message in hand counts as not visible in the queue (idle() sees it).
        with self._lock:
            self._in_flight += 1
        self._pool.submit(self._deliver_one, messages[0])

    def _deliver_one(self, message: Mapping[str, Any]) -> None:
        try:
            self._deliver(message)  # EventPump's: retries, then the on-failure destination
        except Exception as error:
            LOG.exception("lambda runner failed on a message")
            self.errors.append(repr(error))
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    def invoke(self, event: Mapping[str, Any], attempt: int = 1) -> Invocation:
        """One invocation in an execution environment (warm when one is free)."""
        request_id = str(uuid.uuid4())
        fault = self._faults.for_job(event) if self._faults is not None else None
        fault = fault if fault in _LAMBDA_FAULTS else None
        environment = self._acquire(fault)
        if environment.invocations == 0 and environment.start() is None:
            error_type, message = environment.error or ("Runtime.ExitError", "init failed")
            answer: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
        else:
            answer = environment.invoke(request_id, event)
        invocation = Invocation(request_id, event, attempt, result=answer.get("result"))
        if "errorType" in answer:
            invocation.error, invocation.error_type = str(answer["errorMessage"]), str(answer["errorType"])
            LOG.warning(
                "worker function %s failed: %s %s", request_id, answer["errorType"], answer["errorMessage"]
            )
        self._record(environment, invocation, answer, fault)
        self._release(environment, fault)
        with self._lock:
            self.record.invocations.append(invocation)
        return invocation

    def _acquire(self, fault: FaultKind | None) -> ExecutionEnvironment:
        with self._lock:
            if fault is None and self._warm:
                return self._warm.pop()
        function, env = self._function, dict(self._env)
        if fault is FaultKind.OUT_OF_MEMORY:
            function = FunctionConfiguration(**{**function.__dict__, "memory_mb": STARVED_MEMORY_MIB})
        elif fault is FaultKind.HANG and self._stalled is not None:
            env["AWS_ENDPOINT_URL"] = self._stalled.url
        elif fault is FaultKind.TRANSIENT_EXIT_1:
            env["AWS_ENDPOINT_URL"] = closed_port_url()
        return ExecutionEnvironment(
            function, self._code_dir, env, self._log_dir / f"{uuid.uuid4().hex[:12]}.log"
        )

    def _release(self, environment: ExecutionEnvironment, fault: FaultKind | None) -> None:
        if fault is None and environment.alive and not self._loop.stopping:
            with self._lock:
                self._warm.append(environment)
        else:
            environment.close()

    def _record(
        self,
        environment: ExecutionEnvironment,
        invocation: Invocation,
        answer: Mapping[str, Any],
        fault: FaultKind | None,
    ) -> None:
        cold = environment.invocations <= 1
        run = LambdaRun(
            invocation.request_id,
            invocation.event,
            invocation.attempt,
            cold,
            environment.init_ms if cold else 0.0,
            float(answer.get("duration_ms", 0.0)),
            invocation.error_type,
            invocation.result,
            environment.log_path,
            None if fault is None else fault.value,
        )
        with self._lock:
            self.runs.append(run)


# The faults an invocation can meet in Lambda; the others (an image pull, SIGKILL, Spot) are Fargate's.
_LAMBDA_FAULTS = frozenset({FaultKind.OUT_OF_MEMORY, FaultKind.HANG, FaultKind.TRANSIENT_EXIT_1})
