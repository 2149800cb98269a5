"""The launcher Lambda: S3 "object created" notifications -> the worker function or a task per video."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from thumbnail_launcher.batch import launch_all
from thumbnail_launcher.clients import lambda_client
from thumbnail_launcher.dispatch import JobDispatcher
from thumbnail_launcher.jobs import InvalidEventError, parse_event
from thumbnail_launcher.settings import SettingsError, get_settings
from thumbnail_launcher.starter import job_starter

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        settings = get_settings()
        parsed = parse_event(
            S3Event(event),
            video_prefix=settings.video_prefix,
            video_suffix=settings.video_suffix,
            bucket_name=settings.bucket_name,
        )
    except (SettingsError, InvalidEventError):
        logger.exception("Event rejected")
        metrics.add_metric(name="LaunchFailures", unit=MetricUnit.Count, value=1)
        raise
    tasks = job_starter(settings, time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    dispatcher = JobDispatcher(tasks, None if settings.runtime == "fargate" else lambda_client())
    outcome = launch_all(parsed, dispatcher, logger)
    for key, reason in dispatcher.invoke_failures:
        logger.warning(
            "Worker function not invoked: task started instead", extra={"s3_key": key, "reason": reason}
        )
    if settings.runtime != "fargate":  # in a fargate stack, every job is a task
        metrics.add_metric(name="LambdaJobsStarted", unit=MetricUnit.Count, value=len(outcome.invoked))
        metrics.add_metric(
            name="LambdaInvokeFallbacks", unit=MetricUnit.Count, value=len(dispatcher.invoke_failures)
        )
    metrics.add_metric(name="TasksStarted", unit=MetricUnit.Count, value=len(outcome.started))
    metrics.add_metric(
        name="RepeatedEvents", unit=MetricUnit.Count, value=len(outcome.already_started) + outcome.repeats
    )
    metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=len(outcome.queued))
    metrics.add_metric(name="RecordsSkipped", unit=MetricUnit.Count, value=outcome.records_skipped)
    metrics.add_metric(name="RecordsFromOtherBuckets", unit=MetricUnit.Count, value=outcome.other_bucket)
    metrics.add_metric(name="LaunchFailures", unit=MetricUnit.Count, value=len(outcome.failed))
    outcome.raise_if_failed()
    return outcome.summary()
