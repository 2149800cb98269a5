"""python -m ops sweep|replay [--stack NAME] [--apply]: find and relaunch what slipped through.

Without --stack, the running local stack (`make local-up`). With it, the deployed stack of that
name, with the usual AWS credentials. Both are dry runs unless --apply is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import boto3

from thumbnail_launcher.clients import CLIENT_CONFIG
from thumbnail_launcher.ledger import JobLedger
from thumbnail_launcher.pending import PendingQueue
from thumbnail_launcher.replay import Replayer, ReplayReport
from thumbnail_launcher.settings import RecoverySettings, SettingsError
from thumbnail_launcher.slots import TaskSlots
from thumbnail_launcher.starter import JobStarter
from thumbnail_launcher.sweep import DEFAULT_MIN_AGE, Sweeper
from thumbnail_launcher.tasks import TaskLauncher

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class StackNotFoundError(RuntimeError):
    """No stack to act on: name what is missing and how to get it."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        session, outputs = _stack(arguments.stack, arguments.region)
        settings = _recovery_settings(session, outputs)
    except (StackNotFoundError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    launcher = _starter(session, settings) if arguments.apply else None
    if arguments.command == "sweep":
        return _sweep(session, settings, launcher, timedelta(minutes=arguments.min_age_minutes))
    return _replay(session, settings, outputs, launcher)


def _starter(session: boto3.Session, settings: RecoverySettings) -> JobStarter:
    """What the functions start tasks with: the job ledger, MaxConcurrentTasks and the pending queue."""
    launch = settings.launch
    ecs = session.client("ecs", config=CLIENT_CONFIG)
    return JobStarter(
        TaskLauncher(launch, ecs),
        JobLedger(session.client("dynamodb", config=CLIENT_CONFIG), launch.job_ledger_table),
        PendingQueue(session.client("sqs", config=CLIENT_CONFIG), launch.pending_queue_url),
        TaskSlots(ecs, launch.cluster_arn, launch.max_concurrent_tasks),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["sweep", "replay"])
    parser.add_argument("--stack", help="a deployed stack's name (default: the running local stack)")
    parser.add_argument(
        "--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    parser.add_argument("--apply", action="store_true", help="relaunch (default: only say what would be)")
    parser.add_argument(
        "--min-age-minutes",
        type=float,
        default=DEFAULT_MIN_AGE.total_seconds() / 60,
        help="sweep: leave videos younger than this to their own task (default %(default)s)",
    )
    return parser


def _stack(name: str | None, region: str | None) -> tuple[boto3.Session, Mapping[str, str]]:
    """The stack's outputs, from CloudFormation: AWS's, or the running local stack's emulator."""
    if not name:
        from local_stack.__main__ import _running_state
        from local_stack.deploy import STACK_NAME

        state = _running_state()
        if state is None:
            raise StackNotFoundError(
                "no local stack is running: start one with `make local-up`, or pass --stack"
            )
        os.environ.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": str(state["endpoint"])})
        name, region = STACK_NAME, region or "us-east-1"
    session = boto3.Session(region_name=region)
    try:
        (stack,) = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except Exception as error:
        raise StackNotFoundError(f"stack {name!r}: {error}") from None
    return session, {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _recovery_settings(session: boto3.Session, outputs: Mapping[str, str]) -> RecoverySettings:
    """The recovery function's own settings, read from its configuration: one source of truth."""
    name = outputs.get("RecoveryFunctionName")
    if not name:
        raise StackNotFoundError("the stack has no RecoveryFunctionName output: deploy this version first")
    configuration = session.client("lambda").get_function_configuration(FunctionName=name)
    return RecoverySettings.from_env(configuration.get("Environment", {}).get("Variables", {}))


def _sweep(
    session: boto3.Session, settings: RecoverySettings, launcher: JobStarter | None, min_age: timedelta
) -> int:
    launch = settings.launch
    sweeper = Sweeper(
        session.client("s3", config=CLIENT_CONFIG),
        launch.bucket_name,
        launch.video_prefix,
        launch.video_suffix,
        settings.output_prefix,
        min_age=min_age,
    )
    report = sweeper.run(launcher)
    for key, why in report.relaunch:
        print(f"{'relaunched' if key in report.launched else 'would relaunch'}: {key} ({why})")
    for key, why in report.failed:
        print(f"failed to relaunch: {key}: {why}")
    _print_summary("sweep", report.summary(), applied=launcher is not None)
    return 1 if report.failed else 0


def _replay(
    session: boto3.Session,
    settings: RecoverySettings,
    outputs: Mapping[str, str],
    launcher: JobStarter | None,
) -> int:
    launch = settings.launch
    replayer = Replayer(
        session.client("sqs", config=CLIENT_CONFIG),
        launch.video_prefix,
        launch.video_suffix,
        launch.bucket_name,
    )
    report = ReplayReport()
    for output in ("FailedJobsQueueUrl", "DeadLetterQueueUrl"):
        replayer.run(outputs[output], launcher, report)
    for key in report.jobs:
        print(f"{'relaunched' if key in report.launched else 'would relaunch'}: {key}")
    for problem in report.unreadable:
        print(f"left in its queue (not a job or an S3 event): {problem}")
    _print_summary("replay", report.summary(), applied=launcher is not None)
    return 1 if report.failed else 0


def _print_summary(command: str, summary: dict[str, Any], *, applied: bool) -> None:
    if not applied:
        print(f"dry run: nothing was started; `{command} --apply` relaunches")
    print(json.dumps({"command": command, "applied": applied, **summary}))


if __name__ == "__main__":
    sys.exit(main())
