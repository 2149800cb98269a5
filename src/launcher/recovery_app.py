"""The recovery Lambda: every stopped worker task is accounted for, and waiting jobs start.

Event sources: EventBridge's "ECS Task State Change" (STOPPED) for the worker's tasks, after
which the freed slot takes waiting jobs; the retry queue, whose delayed messages start the next
attempt; the drain schedule (every minute: waiting jobs into every free slot); and the optional
sweep schedule.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from thumbnail_launcher.batch_stops import decide_batch, needs_manifests
from thumbnail_launcher.clients import s3_client, sqs_client
from thumbnail_launcher.drain import Drainer, jobs_per_task
from thumbnail_launcher.failures import Failure, FailureReporter
from thumbnail_launcher.jobs import InvalidEventError, Job
from thumbnail_launcher.lambda_failures import decide as decide_lambda_failure
from thumbnail_launcher.lambda_failures import is_failure_record, parse_failure_record
from thumbnail_launcher.naming import manifest_key, read_manifest
from thumbnail_launcher.recovery import Decision, Retry, decide
from thumbnail_launcher.retries import RetryQueue, decode
from thumbnail_launcher.settings import RecoverySettings, get_recovery_settings
from thumbnail_launcher.starter import Deferred, job_starter
from thumbnail_launcher.stops import NotAWorkerTaskError, StopKind, StoppedTask, parse_stopped_task
from thumbnail_launcher.sweep import Sweeper
from thumbnail_launcher.tasks import LaunchError

TASK_STATE_CHANGE = "ECS Task State Change"
# A retry whose task cannot be started is tried again by SQS (the visibility timeout) this often,
# then given up with an error manifest; the queue's redrive policy allows one receive more.
RETRY_LAUNCH_RECEIVES = 4

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_recovery_settings()
    if event.get("detail-type") == TASK_STATE_CHANGE:
        result = on_task_stopped(event.get("detail", {}), settings)
        drained = drain_after_stop(settings, context)
        return {**result, "drain": drained} if drained else result
    if isinstance(event.get("Records"), list):
        return dict(
            process_partial_response(
                event=event, record_handler=start_retry, processor=processor, context=context
            )
        )
    if isinstance(event.get("drain"), dict):
        return drain(settings, context)
    if isinstance(event.get("sweep"), dict):
        return sweep(settings, apply=event["sweep"].get("apply") is True)
    raise InvalidEventError("neither an ECS Task State Change event, SQS retry messages, a drain nor a sweep")


def drain(settings: RecoverySettings, context: LambdaContext, max_tasks: int | None = None) -> dict[str, Any]:
    """Start waiting jobs in the free task slots (at most `max_tasks` tasks), several jobs per task."""
    launch = settings.launch

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    drainer = Drainer(
        job_starter(launch, time_left=time_left, queue_first=False),
        jobs_per_task(launch.max_jobs_per_task, launch.worker_deadline_seconds),
        time_left=time_left,
    )
    report = drainer.drain(max_tasks)
    if max_tasks is not None and not report.waiting:
        return {}  # after a stop, with nothing waiting: the schedule's drain reports the empty queue
    for item, reason in report.failed:
        with logger.append_context_keys(correlation_id=item.retry.job.request_id, s3_key=item.retry.job.key):
            _give_up(Failure(item.retry.job, "launch_failed", reason, None), settings)
    metrics.add_metric(name="PendingJobs", unit=MetricUnit.Count, value=report.waiting)
    if report.waiting:
        metrics.add_metric(
            name="OldestPendingJobAge", unit=MetricUnit.Seconds, value=report.oldest_age_seconds
        )
    metrics.add_metric(name="TasksStartedFromQueue", unit=MetricUnit.Count, value=report.tasks_started)
    metrics.add_metric(name="JobsStartedFromQueue", unit=MetricUnit.Count, value=report.jobs_started)
    if report.tasks_started or report.failed:
        logger.info("Waiting jobs started", extra={"drain": report.summary()})
    return report.summary()


def drain_after_stop(settings: RecoverySettings, context: LambdaContext) -> dict[str, Any]:
    """A stopped task freed one slot: one task of waiting jobs ({} when none waited). A failure
    here is logged, not raised (the stop itself was handled; the schedule drains within a minute)."""
    try:
        return drain(settings, context, max_tasks=1)
    except Exception as error:  # any failure: the schedule drains again
        logger.exception("Drain after a stopped task failed")
        metrics.add_metric(name="DrainFailures", unit=MetricUnit.Count, value=1)
        return {"error": f"{type(error).__name__}: {error}"}


def sweep(settings: RecoverySettings, *, apply: bool) -> dict[str, Any]:
    launch = settings.launch
    sweeper = Sweeper(
        s3_client(), launch.bucket_name, launch.video_prefix, launch.video_suffix, settings.output_prefix
    )
    report = sweeper.run(job_starter(launch) if apply else None)
    for key, why in report.relaunch:
        logger.info("Sweep: video without an up-to-date manifest", extra={"s3_key": key, "why": why})
    for key, why in report.failed:
        logger.error("Sweep: relaunch failed", extra={"s3_key": key, "reason": why})
    metrics.add_metric(name="SweepRelaunches", unit=MetricUnit.Count, value=len(report.launched))
    return report.summary()


def on_task_stopped(detail: dict[str, Any], settings: RecoverySettings) -> dict[str, Any]:
    try:
        task = parse_stopped_task(detail, settings.launch.container_name)
    except NotAWorkerTaskError as error:
        # The rule matches only the worker's family; a task started by hand without a job lands here.
        logger.warning("Stopped task ignored", extra={"reason": str(error)})
        metrics.add_metric(name="StopsIgnored", unit=MetricUnit.Count, value=1)
        return {"action": "ignored", "reason": str(error)}
    if task.batch:
        return _recover_batch(task, settings)
    with logger.append_context_keys(
        correlation_id=task.job.request_id, s3_key=task.job.key, attempt=task.job.attempt
    ):
        return _carry_out(task, task.job, decide(task, settings), settings)


def _recover_batch(task: StoppedTask, settings: RecoverySettings) -> dict[str, Any]:
    """Each job of a batch task alone: done (its own manifest), retried in a task of its own, or given up."""
    prefixes = settings.launch.video_prefix, settings.output_prefix
    read = needs_manifests(task)
    manifests = [
        read_manifest(s3_client(), job.bucket, manifest_key(job.key, *prefixes)) if read else None
        for job in task.jobs
    ]
    actions: dict[str, int] = {}
    for (job, decision), manifest in zip(decide_batch(task, manifests, settings), manifests, strict=True):
        done = manifest is None or manifest.get("status") == "ok"  # None: exit 0, nothing read
        with logger.append_context_keys(correlation_id=job.request_id, s3_key=job.key, attempt=job.attempt):
            action = _carry_out(task, job, decision, settings, done=done)["action"]
        actions[action] = actions.get(action, 0) + 1
    logger.info("Batch task stopped", extra={"task_arn": task.task_arn, "jobs": len(task.jobs), **actions})
    return {"action": "batch", "kind": task.kind.value, "jobs": len(task.jobs), **actions}


def _carry_out(
    task: StoppedTask, job: Job, decision: Decision, settings: RecoverySettings, *, done: bool | None = None
) -> dict[str, Any]:
    """`done`: with no decision, whether the job succeeded (else the worker reported it); by default
    what the task's exit code says."""
    stop = task.describe()
    if decision is None:
        done = task.kind is StopKind.SUCCEEDED if done is None else done
        logger.info("Task finished" if done else "Task reported its failure", extra={"stop": stop})
        metrics.add_metric(name="JobsSucceeded" if done else "JobsReported", unit=MetricUnit.Count, value=1)
        return {"action": "none", "kind": task.kind.value}
    if isinstance(decision, Retry):
        RetryQueue(sqs_client(), settings.retry_queue_url).send(decision, task.task_arn)
        logger.warning(
            "Task stopped: retry scheduled",
            extra={"stop": stop, "next_attempt": decision.job.attempt, "delay_s": decision.delay_seconds},
        )
        metrics.add_metric(name="RetriesScheduled", unit=MetricUnit.Count, value=1)
        return {"action": "retry", "kind": task.kind.value, "attempt": decision.job.attempt}
    _give_up(Failure(job, decision.reason, decision.message, task.task_arn, stop), settings)
    return {"action": "failed", "kind": task.kind.value, "reason": decision.reason}


def start_retry(record: SQSRecord) -> None:
    """Start one queued retry; an exception leaves the message to SQS for another try.

    The queue also holds the worker function's failed invocations (its OnFailure destination)
    and its hand-offs (a retry message): both become Fargate tasks here.
    """
    settings = get_recovery_settings()
    queued = _queued(record.body, settings)
    if isinstance(queued, Failure):
        with logger.append_context_keys(correlation_id=queued.job.request_id, s3_key=queued.job.key):
            _give_up(queued, settings)
        return
    retry, previous_task_arn = queued
    with logger.append_context_keys(
        correlation_id=retry.job.request_id, s3_key=retry.job.key, attempt=retry.job.attempt
    ):
        try:
            task = job_starter(settings.launch, queue_first=False, alone=True).launch(
                retry.job, size=retry.size, on_demand=retry.on_demand
            )
        except LaunchError as error:
            receives = int(record.attributes.approximate_receive_count)
            if receives < RETRY_LAUNCH_RECEIVES:
                logger.warning("Retry not started yet", extra={"reason": error.reason, "receives": receives})
                metrics.add_metric(name="RetryLaunchFailures", unit=MetricUnit.Count, value=1)
                raise
            _give_up(
                Failure(
                    retry.job, "launch_failed", f"{retry.reason}; then {error.reason}", previous_task_arn
                ),
                settings,
            )
            return
        if isinstance(task, Deferred):
            logger.info("Retry waits for capacity", extra={"reason": task.reason, "repeat": task.repeat})
            metrics.add_metric(name="RetriesQueued", unit=MetricUnit.Count, value=0 if task.repeat else 1)
            return
        logger.info(
            "Retry started",
            extra={"task_arn": task.task_arn, "reason": retry.reason, "repeat": task.already_started},
        )
        if not task.already_started:
            metrics.add_metric(name="RetriesStarted", unit=MetricUnit.Count, value=1)


def _queued(body: str, settings: RecoverySettings) -> tuple[Retry, str] | Failure:
    """A retry this package queued, or the worker function's failure record turned into one."""
    data = json.loads(body)
    if not is_failure_record(data):
        return decode(body)
    failure = parse_failure_record(data)
    decision = decide_lambda_failure(failure, settings)
    logger.warning(
        "Worker function failed" + (": a Fargate task takes the job" if isinstance(decision, Retry) else ""),
        extra={"s3_key": failure.job.key, "reason": failure.kind.value, "error": failure.message},
    )
    metrics.add_metric(name="LambdaJobsFailed", unit=MetricUnit.Count, value=1)
    if isinstance(decision, Retry):
        metrics.add_metric(name="LambdaFallbacks", unit=MetricUnit.Count, value=1)
        return decision, failure.invocation
    return decision


def _give_up(failure: Failure, settings: RecoverySettings) -> None:
    reporter = FailureReporter(
        s3_client(),
        sqs_client(),
        settings.failed_jobs_queue_url,
        settings.launch.video_prefix,
        settings.output_prefix,
    )
    wrote = reporter.report(failure)
    logger.error(
        "Job failed: no more attempts",
        extra={"reason": failure.reason, "error": failure.message, "manifest_written": wrote},
    )
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
