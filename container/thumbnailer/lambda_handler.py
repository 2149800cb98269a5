"""The worker function's entry point (template.yaml WorkerFunction): the job is the event.

The launcher invokes the function asynchronously with the job of docs/contract.md ("The job") as
the event; the function runs the task's own path (task.run_job: settings, HEAD, options, pipeline,
error manifest) and returns the outcome. How each outcome reaches Lambda, and what follows:

- exit 0 (thumbnails written, or superseded), 2 and 3 (the worker's own verdict, its error
  manifest written): returned, so Lambda counts a success and nothing retries a verdict;
- a job too heavy for the function (lambda_fit.py) when THUMBNAIL_RUNTIME is `auto`: handed to
  a Fargate task by sending its next attempt to the retry queue, in the retry message's shape
  (src/launcher/thumbnail_launcher/retries.py), with the reason; returned as `handed_off`;
- any other exit code (1: S3 kept failing, a bug): raised, so Lambda records a function error;
  a timeout or an out-of-memory kill is one too, from the runtime itself. After the function's
  own retries (EventInvokeConfig) the on-failure destination, the retry queue, gets Lambda's
  invocation record and the recovery function starts a Fargate task of the same job at the next
  attempt (thumbnail_launcher/lambda_failures.py).

Lambda's asynchronous delivery is at least once: "it's possible for it to receive the same event
from Lambda multiple times" (Lambda developer guide, "Asynchronous invocation"). A repeated job
writes the same objects under the same keys (the thumbnails of the version it names, then the
manifest), so a repeat costs time, never a second result; a repeated hand-off asks for the same
attempt, whose RunTask client token starts one task.

No deadline timer and no SIGTERM handler here (task_lifetime.py is the task's): Lambda ends an
invocation at the function's timeout itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from thumbnailer.errors import (
    EXIT_INVALID_OPTIONS,
    EXIT_OK,
    EXIT_UNUSABLE_VIDEO,
    InvalidOptionsError,
    WorkerError,
)
from thumbnailer.lambda_fit import Limits, too_heavy
from thumbnailer.logs import get_logger
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options
from thumbnailer.pipeline import Admit
from thumbnailer.probe import SourceInfo
from thumbnailer.settings import Settings
from thumbnailer.task import run_job

RUNTIME = "lambda"
RUNTIME_SETTING = "THUMBNAIL_RUNTIME"  # auto: hand heavy jobs to Fargate; lambda: never
RETRY_QUEUE_SETTING = "RETRY_QUEUE_URL"
# Exit code of a job handed to Fargate (EX_TEMPFAIL): not an outcome, a redirection.
EXIT_HANDED_OFF = 75
# Outcomes the function returns: nothing retries them (the worker's verdict, or done).
RETURNED = frozenset({EXIT_OK, EXIT_INVALID_OPTIONS, EXIT_UNUSABLE_VIDEO, EXIT_HANDED_OFF})


class HandedOffError(WorkerError):
    """The job is too heavy for the function: a Fargate task takes it (no manifest from here)."""

    exit_code = EXIT_HANDED_OFF
    reason = "handed_off"
    writes_manifest = False


class WorkerFunctionError(RuntimeError):
    """An exit code that is not a verdict: raised, so that Lambda retries, then reports it."""


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    logger = get_logger()
    env = dict(os.environ)
    if not isinstance(event, Mapping):
        raise WorkerFunctionError("the event is not a job (a JSON object, docs/contract.md)")
    try:
        settings = Settings.from_environment({**env, "THUMBNAIL_JOB": json.dumps(dict(event))})
        names = OutputNames.for_key(settings.job.key, settings.video_prefix, settings.output_prefix)
        limits = Limits.from_environment(env)
    except InvalidOptionsError as error:
        # No valid job, no place for a manifest; a retry would not make it valid: returned.
        logger.error("invalid job or settings", exit_code=EXIT_INVALID_OPTIONS, error=error.message)
        return {"runtime": RUNTIME, "exit_code": EXIT_INVALID_OPTIONS, "error": error.message}
    verdict: dict[str, str] = {}
    admit = _admission(settings, limits, verdict) if env.get(RUNTIME_SETTING, "auto") == "auto" else None
    code, document = run_job(settings, names, logger, runtime=RUNTIME, admit=admit)
    if code == EXIT_HANDED_OFF:
        _hand_off(settings, env, verdict["reason"], getattr(context, "aws_request_id", ""))
        logger.info("job handed to a Fargate task", reason=verdict["reason"])
    if code not in RETURNED:
        raise WorkerFunctionError(f"the worker ended with exit code {code}: see its log and manifest")
    return {
        "runtime": RUNTIME,
        "exit_code": code,
        "status": None if document is None else document.get("status"),
        "manifest": names.manifest() if document is not None else None,
        "handed_off": verdict.get("reason"),
    }


def _admission(settings: Settings, limits: Limits, verdict: dict[str, str]) -> Admit:
    def admit(info: SourceInfo, options: Options) -> None:
        reason = too_heavy(info, options, settings.job.size, limits)
        if reason is not None:
            verdict["reason"] = reason
            raise HandedOffError(f"too heavy for the worker function: {reason}")

    return admit


def _hand_off(settings: Settings, env: Mapping[str, str], reason: str, request_id: str) -> None:
    """The job's next attempt to the retry queue, without delay: the recovery function starts its task."""
    queue_url = env.get(RETRY_QUEUE_SETTING, "")
    if not queue_url:
        raise WorkerFunctionError(f"{RETRY_QUEUE_SETTING} is not set: the job cannot be handed off")
    job = {**settings.job.as_dict(), "attempt": settings.job.attempt + 1}
    body = {
        "job": job,
        "reason": f"handed_off: {reason}",
        "size": None,
        "on_demand": False,
        "previous_task_arn": f"lambda:{request_id}",
    }
    _sqs_client().send_message(QueueUrl=queue_url, MessageBody=json.dumps(body, sort_keys=True))


def _sqs_client() -> Any:
    import boto3

    return boto3.client("sqs")
