"""A worker function invocation that failed -> a Fargate task of the same job at the next attempt, or give up.

The worker function's EventInvokeConfig sends the record of an invocation that failed every
attempt to the retry queue (OnFailure destination), where the recovery function reads it beside
the queued retries. The record's shape is Lambda's ("Capturing records of Lambda asynchronous
invocations", Lambda developer guide):

    {"version": "1.0", "timestamp": "...",
     "requestContext": {"requestId": "...", "functionArn": "...:$LATEST",
                        "condition": "RetriesExhausted" | "EventAgeExceeded",
                        "approximateInvokeCount": 1},
     "requestPayload": <the job>,
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
     "responsePayload": {"errorMessage": "...", "errorType": "..."}}

What failed, from the condition and the error type: `EventAgeExceeded` (throttled until the event
was too old), a timeout (`Sandbox.Timedout`, "Task timed out after"), out of memory
(`Runtime.OutOfMemory`, or the runtime killed: "signal: killed"), or any other function error
(the worker's exit 1: S3 kept failing, a bug). With THUMBNAIL_RUNTIME `auto`, each becomes a
Fargate task of the job at the next attempt, at once (the function has already used its own
retries); with `lambda` (no Fargate), the job is given up with that reason. The worker's own
verdicts (exit 2 and 3) are returned by the function, never raised: they never arrive here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from thumbnail_launcher.failures import Failure
from thumbnail_launcher.jobs import Job
from thumbnail_launcher.recovery import Retry
from thumbnail_launcher.settings import RecoverySettings


class LambdaFailureKind(StrEnum):
    TIMEOUT = "lambda_timeout"
    OUT_OF_MEMORY = "lambda_out_of_memory"
    EVENT_AGE_EXCEEDED = "lambda_event_age_exceeded"
    ERROR = "lambda_error"


@dataclass(frozen=True)
class LambdaFailure:
    job: Job
    kind: LambdaFailureKind
    message: str
    request_id: str

    @property
    def invocation(self) -> str:
        """Stands for the task ARN in retries and error manifests."""
        return f"lambda:{self.request_id}"


def is_failure_record(data: Any) -> bool:
    """True for a Lambda destination record (not a retry this package queued)."""
    return isinstance(data, dict) and "requestContext" in data and "requestPayload" in data


def parse_failure_record(data: dict[str, Any]) -> LambdaFailure:
    """The job and what happened to it; ValueError when the record does not carry a job."""
    context = data.get("requestContext") or {}
    response = data.get("responsePayload")
    response = response if isinstance(response, dict) else {"errorMessage": str(response or "")}
    message = str(response.get("errorMessage", ""))
    error_type = str(response.get("errorType", ""))
    kind = classify(str(context.get("condition", "")), error_type, message)
    what = f"{context.get('condition', '?')}: {error_type or 'error'}: {message}".strip()
    return LambdaFailure(
        Job.from_contract(data.get("requestPayload")), kind, what[:1000], str(context.get("requestId", ""))
    )


def classify(condition: str, error_type: str, message: str) -> LambdaFailureKind:
    if condition == "EventAgeExceeded":
        return LambdaFailureKind.EVENT_AGE_EXCEEDED
    if error_type == "Sandbox.Timedout" or "Task timed out after" in message:
        return LambdaFailureKind.TIMEOUT
    if error_type == "Runtime.OutOfMemory" or "signal: killed" in message:
        return LambdaFailureKind.OUT_OF_MEMORY
    return LambdaFailureKind.ERROR


def decide(failure: LambdaFailure, settings: RecoverySettings) -> Retry | Failure:
    """A Fargate task of the job at the next attempt (no delay), or the job given up."""
    if settings.launch.runtime == "lambda":
        return Failure(
            failure.job,
            failure.kind.value,
            f"the worker function failed ({failure.message}); runtime lambda has no Fargate fallback",
            failure.invocation,
        )
    if failure.job.attempt >= settings.max_attempts:
        return Failure(
            failure.job,
            failure.kind.value,
            f"the worker function failed ({failure.message}); gave up after {failure.job.attempt} attempt(s)",
            failure.invocation,
        )
    return Retry(
        job=failure.job.next_attempt(),
        reason=f"{failure.kind.value}: {failure.message}",
        delay_seconds=0,
    )
