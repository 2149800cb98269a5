"""Start a job's task, or queue it: the one road to RunTask for the launcher, the retries, the
sweep, the replay and the drain (README "Quotas and bursts").

A job waits in the pending-jobs queue, instead of failing, when RunTask refuses it for a quota
or for capacity, when MaxConcurrentTasks tasks are already running, or (for new jobs) when
others are already waiting: those start first, in batches. The job ledger (ledger.py) makes
each attempt start once, whichever road it came by and however often it was delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from thumbnail_launcher.clients import dynamodb_client, ecs_client, sqs_client
from thumbnail_launcher.jobs import Job
from thumbnail_launcher.ledger import Entry, JobLedger, JobState
from thumbnail_launcher.pending import PendingQueue
from thumbnail_launcher.recovery import Retry
from thumbnail_launcher.settings import Settings
from thumbnail_launcher.slots import TaskSlots
from thumbnail_launcher.tasks import Capacity, LaunchedTask, LaunchError, TaskLauncher, TaskPlan, TaskSize


@dataclass(frozen=True)
class Deferred:
    """The job waits in the pending-jobs queue. `repeat`: it already did (or already started), and
    this delivery added nothing."""

    reason: str
    repeat: bool = False


def ledger_token(plan: TaskPlan) -> str:
    """The plan's identity in the ledger: its on-demand RunTask token (the Spot one differs)."""
    return plan.token(Capacity.ON_DEMAND)


@dataclass
class JobStarter:
    tasks: TaskLauncher
    ledger: JobLedger
    pending: PendingQueue
    slots: TaskSlots
    # New jobs queue behind waiting ones (the launcher, the sweep); retries don't: they are few,
    # and were already delayed by their backoff.
    queue_first: bool = True
    # Jobs this starter queues start alone, not in a batch (retries).
    alone: bool = False
    _waiting: bool | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        return self.tasks.settings

    def launch(
        self, job: Job, *, size: TaskSize | None = None, on_demand: bool = False
    ) -> LaunchedTask | Deferred:
        """Start the job's task now if a slot is free and nothing waits; otherwise queue it."""
        plan = TaskPlan((job,), size, on_demand)
        if self.queue_first and self._jobs_waiting():
            return self.defer(plan, "other jobs are waiting for capacity")
        if not self.slots.take():
            return self.defer(plan, f"{self.slots.max_concurrent_tasks} tasks running (MaxConcurrentTasks)")
        started = self.start(plan)
        if isinstance(started, Deferred) or started.already_started:
            self.slots.give_back()
        return started

    def start(self, plan: TaskPlan, *, requeue: bool = True) -> LaunchedTask | Deferred:
        """Claim the plan's jobs in the ledger and run its task.

        On a quota or capacity refusal the jobs go back to waiting: queued again when `requeue`
        (the drain instead gives its received messages back). A job another start already owns
        comes back as that start (one job) or as a repeat Deferred (a batch: try again later).
        Raises LaunchError for any other refusal, with the jobs released.
        """
        token = ledger_token(plan)
        claimed: list[Job] = []
        for job in plan.jobs:
            if not self.ledger.claim(job, plan, token):
                break
            claimed.append(job)
        if len(claimed) < len(plan.jobs):
            for job in claimed:
                self.ledger.release(job, token)
            if len(plan.jobs) == 1:
                return self.existing(plan.job, requeue=requeue)
            return Deferred("a job of this batch was taken by another start", repeat=True)
        return self._run(plan, token, requeue=requeue)

    def existing(self, job: Job, *, requeue: bool = True) -> LaunchedTask | Deferred:
        """What became of a job the ledger already knows: its task, or (still starting) its start again."""
        entry = self.ledger.entry(job)
        if entry is None or entry.state in {JobState.WAITING, JobState.FAILED} or entry.plan is None:
            return Deferred("already waiting for capacity", repeat=True)
        if entry.state is JobState.STARTED:
            return LaunchedTask(entry.task_arn, Capacity.ON_DEMAND, 0, already_started=True)
        return self.resume(entry, requeue=requeue)

    def resume(self, entry: Entry, *, requeue: bool = True) -> LaunchedTask | Deferred:
        """Repeat a start that may not have reached RunTask (same request and token: ECS starts it once)."""
        assert entry.plan is not None
        return self._run(entry.plan, entry.token, requeue=requeue)

    def defer(self, plan: TaskPlan, reason: str) -> Deferred:
        """Queue a single job, unless the ledger already knows it (a repeated delivery adds nothing).

        Sent before it is recorded: a crash in between leaves a queued job the ledger doesn't
        know, which the next delivery may queue again; the drain drops such a duplicate.
        """
        entry = self.ledger.entry(plan.job)
        if entry is not None and entry.state is not JobState.FAILED:
            return Deferred(reason, repeat=True)
        self.pending.put(Retry(plan.job, reason, 0, plan.size, plan.on_demand, self.alone))
        self.ledger.mark_waiting(plan.job)
        self._waiting = True
        return Deferred(reason)

    def _run(self, plan: TaskPlan, token: str, *, requeue: bool) -> LaunchedTask | Deferred:
        try:
            task = self.tasks.start(plan)
        except LaunchError as error:
            if error.limit and requeue:
                for job in plan.jobs:
                    self.pending.put(Retry(job, error.reason, 0, plan.size, plan.on_demand, self.alone))
            state = JobState.WAITING if error.limit else JobState.FAILED
            for job in plan.jobs:
                self.ledger.release(job, token, state)
            if error.limit:
                return Deferred(error.reason)
            raise
        for job in plan.jobs:
            self.ledger.started(job, token, task.task_arn)
        return task

    def _jobs_waiting(self) -> bool:
        if self._waiting is None:
            self._waiting = self.pending.depth() > 0
        return self._waiting


def job_starter(
    settings: Settings,
    *,
    time_left: Callable[[], float] | None = None,
    queue_first: bool = True,
    alone: bool = False,
) -> JobStarter:
    """The starter of a Lambda invocation, on the cached clients."""
    return JobStarter(
        TaskLauncher(settings, ecs_client(), time_left=time_left),
        JobLedger(dynamodb_client(), settings.job_ledger_table),
        PendingQueue(sqs_client(), settings.pending_queue_url),
        TaskSlots(ecs_client(), settings.cluster_arn, settings.max_concurrent_tasks),
        queue_first=queue_first,
        alone=alone,
    )
