"""Quotas and bursts on moto: jobs beyond MaxConcurrentTasks or a refused RunTask wait in the pending
queue; the drain starts them in batches; a stopped batch task is decided job by job."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event
from test_recovery_decisions import OOM
from test_recovery_handler import queued, stopped_event

from launcher_support import (
    BUCKET,
    EcsWorld,
    LambdaContext,
    RecoveryWorld,
    RunTaskWire,
    emitted,
    load_event,
)
from local_stack.queue_poller import sqs_event
from thumbnail_launcher.batch import LaunchFailuresError
from thumbnail_launcher.jobs import Job, parse_event
from thumbnail_launcher.ledger import JobLedger, JobState
from thumbnail_launcher.retries import decode
from thumbnail_launcher.settings import get_recovery_settings
from thumbnail_launcher.starter import job_starter, ledger_token
from thumbnail_launcher.tasks import JOBS_VARIABLE, Capacity, TaskPlan

# ECS's wording (the ECS developer guide prints it with a typographic apostrophe).
VCPU_LIMIT = "You\u2019ve reached the limit on the number of vCPUs you can run concurrently"


def refuse_for_the_vcpu_quota(world: EcsWorld) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    """RunTask's answer at the quota: HTTP 200, no task, a failure naming why."""
    return lambda _: (200, {"tasks": [], "failures": [{"arn": world.cluster_arn, "reason": VCPU_LIMIT}]})


def a_job(index: int, attempt: int = 1) -> Job:
    return Job(
        bucket=BUCKET,
        key=f"videos/burst/{index:03d}.mp4",
        version_id=f"v{index}",
        etag=f"etag{index}",
        size=1000,
        event_time="2026-11-27T10:00:00.000Z",
        request_id=f"REQ{index:03d}",
        attempt=attempt,
    )


def waiting(world: EcsWorld) -> list[Job]:
    """The jobs in the pending queue (received once and left hidden)."""
    return [decode(message["Body"])[0].job for message in queued(world.pending_queue_url)]


def ledger(world: EcsWorld) -> JobLedger:
    return JobLedger(boto3.client("dynamodb"), world.job_ledger_table)


def jobs_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    (override,) = request["overrides"]["containerOverrides"]
    values = {item["name"]: item["value"] for item in override["environment"]}
    if JOBS_VARIABLE in values:
        return list(json.loads(values[JOBS_VARIABLE]))
    return [json.loads(values["THUMBNAIL_JOB"])]


# ---------------------------------------------------------------- the launcher


def test_a_burst_beyond_max_concurrent_tasks_waits_instead_of_failing(
    configure: Callable[..., ModuleType],
    wire: RunTaskWire,
    ecs_world: EcsWorld,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = configure(MAX_CONCURRENT_TASKS="1")
    event = load_event("put-many.json")
    summary = app.lambda_handler(event, LambdaContext())
    assert (summary["tasks_started"], summary["jobs_queued"], summary["launch_failures"]) == (1, 2, 0)
    assert len(wire.requests) == 1
    metrics, _ = emitted(capsys.readouterr().out)
    assert (metrics["TasksStarted"], metrics["JobsQueued"], metrics["LaunchFailures"]) == (1, 2, 0)

    # The same event again: the started job and the two waiting ones add nothing.
    again = app.lambda_handler(event, LambdaContext())
    assert (again["tasks_started"], again["jobs_queued"], again["repeated_events"]) == (0, 0, 3)
    assert len(wire.requests) == 1
    keys = sorted(job.key for job in waiting(ecs_world))
    assert len(keys) == 2 and keys == sorted(set(keys))


def test_a_vcpu_quota_refusal_queues_the_job(
    app: ModuleType, wire: RunTaskWire, ecs_world: EcsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    wire.reply(refuse_for_the_vcpu_quota(ecs_world))
    summary = app.lambda_handler(load_event("put.json"), LambdaContext())
    assert (summary["tasks_started"], summary["jobs_queued"], summary["launch_failures"]) == (0, 1, 0)
    assert len(wire.requests) == 1  # not retried in the invocation: only time clears a quota
    (job,) = waiting(ecs_world)
    assert job.key == "videos/big-buck-bunny.mp4" and job.attempt == 1
    entry = ledger(ecs_world).entry(job)
    assert entry is not None and entry.state is JobState.WAITING
    _, logs = emitted(capsys.readouterr().out)
    assert any(VCPU_LIMIT in str(log.get("reason")) for log in logs)


def test_a_job_refused_for_another_reason_is_not_taken_for_a_waiting_one(
    app: ModuleType, wire: RunTaskWire, ecs_world: EcsWorld
) -> None:
    """RunTask refused for good: the event fails (Lambda retries it). Its next delivery, finding
    other jobs waiting, must queue the job: the ledger marks the refused one failed, not waiting."""
    wire.reply(lambda _: (200, {"tasks": [], "failures": [{"arn": "x", "reason": "MISSING"}]}))
    event = load_event("put.json")
    with pytest.raises(LaunchFailuresError, match="MISSING"):
        app.lambda_handler(event, LambdaContext())
    (job,) = parse_event(S3Event(event), video_prefix="videos/", video_suffix=".mp4").jobs
    entry = ledger(ecs_world).entry(job)
    assert entry is not None and entry.state is JobState.FAILED
    boto3.client("sqs").send_message(  # another job waits for capacity
        QueueUrl=ecs_world.pending_queue_url, MessageBody=json.dumps({"job": a_job(9).contract()})
    )
    wire.reset()
    again = app.lambda_handler(event, LambdaContext())
    assert (again["jobs_queued"], again["repeated_events"], again["launch_failures"]) == (1, 0, 0)
    assert sorted(job.key for job in waiting(ecs_world)) == sorted([job.key, a_job(9).key])


def test_throttled_run_task_queues_the_job(app: ModuleType, wire: RunTaskWire, ecs_world: EcsWorld) -> None:
    wire.reply(lambda _: (400, {"__type": "ThrottlingException", "message": "Rate exceeded"}))
    summary = app.lambda_handler(load_event("put.json"), LambdaContext())
    assert (summary["jobs_queued"], summary["launch_failures"]) == (1, 0)
    assert len(waiting(ecs_world)) == 1


# ---------------------------------------------------------------- the drain


@pytest.fixture
def park(recovery_world: RecoveryWorld) -> Callable[[list[Job]], None]:
    """Queue jobs as the launcher does when nothing may start (after configure_recovery)."""

    def put(jobs: list[Job]) -> None:
        starter = job_starter(get_recovery_settings().launch)
        for job in jobs:
            assert not starter.defer(TaskPlan((job,)), "test: no capacity").repeat

    return put


def test_the_drain_starts_waiting_jobs_in_batches_within_the_free_slots(
    configure_recovery: Callable[..., ModuleType],
    recovery_world: RecoveryWorld,
    wire: RunTaskWire,
    park: Callable[[list[Job]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    recovery = configure_recovery(MAX_CONCURRENT_TASKS="2", MAX_JOBS_PER_TASK="5")
    park([a_job(index) for index in range(12)])
    result = recovery.lambda_handler({"drain": {}}, LambdaContext())
    assert (result["waiting"], result["tasks_started"], result["jobs_started"]) == (12, 2, 10)
    assert [len(jobs_of(request)) for request in wire.requests] == [5, 5]
    metrics, _ = emitted(capsys.readouterr().out)
    assert (metrics["PendingJobs"], metrics["TasksStartedFromQueue"], metrics["JobsStartedFromQueue"]) == (
        12,
        2,
        10,
    )
    started = [job["key"] for request in wire.requests for job in jobs_of(request)]
    for job in [a_job(index) for index in range(12)]:
        entry = ledger(recovery_world.ecs).entry(job)
        assert entry is not None
        assert entry.state is (JobState.STARTED if job.key in started else JobState.WAITING)

    # Both slots are taken (moto's tasks keep running): the next drain starts nothing.
    wire.reset()
    assert recovery.lambda_handler({"drain": {}}, LambdaContext())["tasks_started"] == 0
    assert wire.requests == []
    assert sorted(job.key for job in waiting(recovery_world.ecs)) == sorted(
        a_job(index).key for index in range(12) if a_job(index).key not in started
    )


def test_a_duplicate_message_of_a_started_job_is_dropped(
    configure_recovery: Callable[..., ModuleType],
    recovery_world: RecoveryWorld,
    wire: RunTaskWire,
    park: Callable[[list[Job]], None],
) -> None:
    recovery = configure_recovery(MAX_CONCURRENT_TASKS="5")
    park([a_job(1)])
    assert recovery.lambda_handler({"drain": {}}, LambdaContext())["tasks_started"] == 1
    # SQS delivers at least once: the same job queued again (a send whose answer was lost).
    boto3.client("sqs").send_message(
        QueueUrl=recovery_world.ecs.pending_queue_url,
        MessageBody=json.dumps({"job": a_job(1).contract(), "reason": "duplicate"}),
    )
    result = recovery.lambda_handler({"drain": {}}, LambdaContext())
    assert (result["tasks_started"], result["repeats"]) == (0, 1)
    assert len(wire.requests) == 1
    assert waiting(recovery_world.ecs) == []


def test_an_interrupted_start_is_finished_with_the_same_request(
    configure_recovery: Callable[..., ModuleType],
    recovery_world: RecoveryWorld,
    wire: RunTaskWire,
    park: Callable[[list[Job]], None],
) -> None:
    """A drain that claimed jobs and stopped before RunTask: whoever meets them next repeats that exact
    RunTask (same jobs, same client token), which ECS starts at most once."""
    recovery = configure_recovery(MAX_CONCURRENT_TASKS="5")
    jobs = [a_job(1), a_job(2)]
    park(jobs)
    plan = TaskPlan(tuple(jobs))
    for job in jobs:
        assert ledger(recovery_world.ecs).claim(job, plan, ledger_token(plan))
    recovery.lambda_handler({"drain": {}}, LambdaContext())
    (request,) = wire.requests
    assert request["clientToken"] == plan.token(Capacity.ON_DEMAND) and len(jobs_of(request)) == 2
    for job in jobs:
        entry = ledger(recovery_world.ecs).entry(job)
        assert entry is not None and entry.state is JobState.STARTED and entry.task_arn
    assert waiting(recovery_world.ecs) == []


def test_a_refusal_during_the_drain_leaves_the_jobs_waiting(
    configure_recovery: Callable[..., ModuleType],
    recovery_world: RecoveryWorld,
    wire: RunTaskWire,
    park: Callable[[list[Job]], None],
) -> None:
    recovery = configure_recovery(MAX_CONCURRENT_TASKS="5", MAX_JOBS_PER_TASK="3")
    jobs = [a_job(index) for index in range(5)]
    park(jobs)
    wire.reply(refuse_for_the_vcpu_quota(recovery_world.ecs))
    result = recovery.lambda_handler({"drain": {}}, LambdaContext())
    assert (result["tasks_started"], result["failed"]) == (0, 0)
    assert len(wire.requests) == 1  # the first refusal ends the drain
    assert sorted(job.key for job in waiting(recovery_world.ecs)) == sorted(job.key for job in jobs)
    for job in jobs:
        entry = ledger(recovery_world.ecs).entry(job)
        assert entry is not None and entry.state is JobState.WAITING


def test_a_stopped_task_frees_a_slot_for_waiting_jobs(
    configure_recovery: Callable[..., ModuleType],
    recovery_world: RecoveryWorld,
    wire: RunTaskWire,
    park: Callable[[list[Job]], None],
) -> None:
    recovery = configure_recovery(MAX_CONCURRENT_TASKS="5", MAX_JOBS_PER_TASK="10")
    park([a_job(index) for index in range(3)])
    result = recovery.lambda_handler(stopped_event(recovery_world, exit_code=0), LambdaContext())
    assert result["action"] == "none"
    assert (result["drain"]["tasks_started"], result["drain"]["jobs_started"]) == (1, 3)
    (request,) = wire.requests
    assert [job["key"] for job in jobs_of(request)] == [a_job(index).key for index in range(3)]


# ---------------------------------------------------------------- a stopped batch task


def batch_stopped_event(world: RecoveryWorld, jobs: list[Job], **values: Any) -> dict[str, Any]:
    event = stopped_event(world, **values)
    (override,) = event["detail"]["overrides"]["containerOverrides"]
    override["environment"] = [{"name": JOBS_VARIABLE, "value": json.dumps([job.contract() for job in jobs])}]
    return event


def write_manifest(job: Job, *, exit_code: int | None = None) -> None:
    """The worker's manifest for this job's version and attempt: ok, or an error with its exit code."""
    document: dict[str, Any] = {
        "schema_version": 1,
        "status": "ok" if exit_code is None else "error",
        "input": {"bucket": job.bucket, "key": job.key, "version_id": job.version_id, "etag": job.etag}
        | {"attempt": job.attempt},
    }
    if exit_code is not None:
        document["error"] = {"exit_code": exit_code, "reason": "internal_error", "message": "boom"}
    key = "thumbnails/" + job.key.removeprefix("videos/") + ".json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())


@pytest.fixture
def recovery(configure_recovery: Callable[..., ModuleType]) -> ModuleType:
    return configure_recovery(RETRY_DELAY_SECONDS="0", MAX_CONCURRENT_TASKS="1")


def test_a_batch_task_killed_for_memory_retries_each_unfinished_job_alone(
    recovery: ModuleType, recovery_world: RecoveryWorld
) -> None:
    jobs = [a_job(1), a_job(2), a_job(3)]
    write_manifest(jobs[0])  # done before the kill: not redone
    event = batch_stopped_event(recovery_world, jobs, exit_code=137, reason=OOM, memory=2048)
    result = recovery.lambda_handler(event, LambdaContext())
    assert (result["action"], result["jobs"], result["none"], result["retry"]) == ("batch", 3, 1, 2)
    retries = {retry.job.key: retry for retry, _ in map(decode, bodies(recovery_world.retry_queue_url))}
    assert set(retries) == {jobs[1].key, jobs[2].key}
    running, never_reached = retries[jobs[1].key], retries[jobs[2].key]
    # The job it was running: attempt 2 with twice the memory; the next one: attempt 2 at once.
    assert (running.job.attempt, running.alone) == (2, True)
    assert running.size is not None and running.size.memory == 4096
    assert (never_reached.job.attempt, never_reached.alone, never_reached.size) == (2, True, None)
    assert never_reached.reason.startswith("not_reached")


def bodies(url: str) -> list[str]:
    return [message["Body"] for message in queued(url)]


def test_a_batch_job_that_failed_unexpectedly_is_retried_alone(
    recovery: ModuleType, recovery_world: RecoveryWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = [a_job(1), a_job(2), a_job(3)]
    write_manifest(jobs[0])
    write_manifest(jobs[1], exit_code=1)
    write_manifest(jobs[2], exit_code=3)  # the worker's verdict on that video: final
    result = recovery.lambda_handler(batch_stopped_event(recovery_world, jobs, exit_code=1), LambdaContext())
    assert (result["none"], result["retry"]) == (2, 1)
    (retry,) = [decode(m["Body"])[0] for m in queued(recovery_world.retry_queue_url)]
    assert (retry.job.key, retry.job.attempt, retry.size) == (jobs[1].key, 2, None)
    assert waiting(recovery_world.ecs) == []
    metrics, _ = emitted(capsys.readouterr().out)
    assert (metrics["JobsSucceeded"], metrics["JobsReported"], metrics["RetriesScheduled"]) == (1, 1, 1)


def test_a_batch_task_that_exited_0_needs_nothing(
    recovery: ModuleType, recovery_world: RecoveryWorld
) -> None:
    jobs = [a_job(1), a_job(2)]
    result = recovery.lambda_handler(batch_stopped_event(recovery_world, jobs, exit_code=0), LambdaContext())
    assert (result["action"], result["none"]) == ("batch", 2)
    assert queued(recovery_world.retry_queue_url) == [] and waiting(recovery_world.ecs) == []


def test_a_repeated_stop_of_a_batch_starts_each_retry_once(
    configure_recovery: Callable[..., ModuleType], recovery_world: RecoveryWorld, wire: RunTaskWire
) -> None:
    recovery = configure_recovery(RETRY_DELAY_SECONDS="0", MAX_CONCURRENT_TASKS="5")
    jobs = [a_job(1), a_job(2), a_job(3)]
    write_manifest(jobs[0])
    event = batch_stopped_event(recovery_world, jobs, exit_code=143, stop_code="UserInitiated")
    recovery.lambda_handler(event, LambdaContext())
    recovery.lambda_handler(event, LambdaContext())  # EventBridge delivers at least once
    messages = queued(recovery_world.retry_queue_url)
    assert sorted(decode(m["Body"])[0].job.key for m in messages) == sorted([jobs[1].key, jobs[2].key] * 2)
    recovery.lambda_handler(sqs_event(messages, recovery_world.retry_queue_url), LambdaContext())
    # Each attempt 2 started once (the job ledger), each in a task of its own.
    started = sorted((job["key"], job["attempt"]) for request in wire.requests for job in jobs_of(request))
    assert started == [(jobs[1].key, 2), (jobs[2].key, 2)]
    assert all(len(jobs_of(request)) == 1 for request in wire.requests)


def test_a_batch_stop_without_a_readable_job_list_is_ignored(
    recovery: ModuleType, recovery_world: RecoveryWorld
) -> None:
    event = stopped_event(recovery_world, exit_code=0)
    (override,) = event["detail"]["overrides"]["containerOverrides"]
    override["environment"] = [{"name": JOBS_VARIABLE, "value": "[]"}]
    result = recovery.lambda_handler(event, LambdaContext())
    assert result["action"] == "ignored" and JOBS_VARIABLE in result["reason"]
