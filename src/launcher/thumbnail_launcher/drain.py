"""The drain: start waiting jobs as task slots free, several jobs per task.

Run by the recovery function when a worker task stops (its slot is free: one task) and by a
schedule every minute (all free slots), so a queue that no stop will drain (nothing running) still
empties. Each task takes up to `jobs_per_task` waiting jobs of the same size, run one after another
by the worker (THUMBNAIL_JOBS): a burst pays Fargate's one-minute minimum once per batch, not once
per video. RunTask calls are paced below ECS's RunTask rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from thumbnail_launcher.clients import WORST_CALL_SECONDS
from thumbnail_launcher.ledger import Entry, JobState, job_id
from thumbnail_launcher.pending import PendingJob
from thumbnail_launcher.starter import Deferred, JobStarter
from thumbnail_launcher.tasks import OVERRIDE_CHARACTERS, LaunchError, TaskPlan, jobs_json

# The and ECS's figure for a new account is 20 RunTask calls a second (sustained); the
# drain keeps to half, leaving the rest to the launcher and the retries.
RUN_TASKS_PER_SECOND = 10.0
# The worker starts a job of a batch only with this much of its deadline left (docs/contract.md
# "Several jobs per task"): a batch holds at most deadline // 60 jobs.
BATCH_JOB_RESERVE_SECONDS = 60


def jobs_per_task(max_jobs_per_task: int, deadline_seconds: int) -> int:
    return max(1, min(max_jobs_per_task, deadline_seconds // BATCH_JOB_RESERVE_SECONDS))


@dataclass
class DrainReport:
    waiting: int = 0  # jobs waiting when the drain began (SQS's approximate count)
    oldest_age_seconds: float = 0.0  # the oldest job this drain received
    tasks_started: int = 0
    jobs_started: int = 0
    repeats: int = 0  # duplicate messages of jobs already started
    failed: list[tuple[PendingJob, str]] = field(default_factory=list)  # refused for good

    def summary(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "oldest_age_seconds": round(self.oldest_age_seconds, 1),
            "tasks_started": self.tasks_started,
            "jobs_started": self.jobs_started,
            "repeats": self.repeats,
            "failed": len(self.failed),
        }


@dataclass
class Drainer:
    starter: JobStarter
    jobs_per_task: int
    # Seconds left in the invocation (the Lambda context's); None: no limit.
    time_left: Callable[[], float] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _last_run_task: float = field(default=float("-inf"), init=False)

    def drain(self, max_tasks: int | None = None) -> DrainReport:
        pending = self.starter.pending
        report = DrainReport(waiting=pending.depth())
        if report.waiting == 0:
            return report
        free = self.starter.slots.free()
        budget = free if max_tasks is None else min(free, max_tasks)
        while budget > 0 and self._has_time():
            received = pending.receive(self.jobs_per_task)
            if not received:
                break
            ages = [job.age_seconds() for job in received]
            report.oldest_age_seconds = max([report.oldest_age_seconds, *ages])
            fresh = self._drop_started(received, report)
            for group in batches(fresh, self.jobs_per_task):
                if budget <= 0:
                    pending.give_back(group)
                    continue
                budget = self._start(group, report, budget)
        return report

    def _drop_started(self, received: Sequence[PendingJob], report: DrainReport) -> list[PendingJob]:
        """The received jobs still waiting; duplicates and jobs already started are deleted, and a
        start interrupted before RunTask is finished first."""
        fresh: dict[str, PendingJob] = {}
        settled: list[PendingJob] = []
        for item in received:
            job = item.retry.job
            key = job_id(job)
            entry = self.starter.ledger.entry(job)
            if key in fresh or (entry is not None and entry.state is JobState.STARTED):
                settled.append(item)
                report.repeats += 1
            elif entry is not None and entry.state is JobState.STARTING:
                if self._resumed(entry, item, report):
                    settled.append(item)
            else:
                fresh[key] = item
        if settled:
            self.starter.pending.done(settled)
        return list(fresh.values())

    def _resumed(self, entry: Entry, item: PendingJob, report: DrainReport) -> bool:
        """Finish an interrupted start; False when it is refused again (the job stays queued)."""
        try:
            resumed = self.starter.resume(entry, requeue=False)
        except LaunchError as error:
            report.failed.append((item, error.reason))
            return True
        if isinstance(resumed, Deferred):
            self.starter.pending.give_back([item])
            return False
        return True

    def _start(self, group: list[PendingJob], report: DrainReport, budget: int) -> int:
        """Start one task for `group`; the budget left (0 once ECS refuses for a quota)."""
        first = group[0].retry
        plan = TaskPlan(tuple(item.retry.job for item in group), first.size, first.on_demand)
        self._pace()
        try:
            started = self.starter.start(plan, requeue=False)
        except LaunchError as error:
            report.failed.extend((item, error.reason) for item in group)
            self.starter.pending.done(group)
            return budget
        if isinstance(started, Deferred):
            self.starter.pending.give_back(group)
            return budget if started.repeat else 0
        self.starter.pending.done(group)
        if not started.already_started:
            report.tasks_started += 1
            report.jobs_started += len(group)
        return budget - 1

    def _pace(self) -> None:
        wait = self._last_run_task + 1 / RUN_TASKS_PER_SECOND - self.clock()
        if wait > 0:
            self.sleep(wait)
        self._last_run_task = self.clock()

    def _has_time(self) -> bool:
        # Room for a RunTask with its retries (TaskLauncher checks that again before each call).
        return self.time_left is None or self.time_left() > WORST_CALL_SECONDS


def batches(jobs: Sequence[PendingJob], limit: int) -> list[list[PendingJob]]:
    """Jobs of the default size together, up to `limit` and the override's length; a retry (its own
    size or capacity after an out-of-memory kill or a Spot interruption, or just `alone`) alone."""
    groups: list[list[PendingJob]] = []
    batch: list[PendingJob] = []
    for item in jobs:
        if item.retry.size is not None or item.retry.on_demand or item.retry.alone:
            groups.append([item])
            continue
        candidate = [*batch, item]
        if len(candidate) > limit or len(jobs_json([i.retry.job for i in candidate])) > OVERRIDE_CHARACTERS:
            groups.append(batch)
            candidate = [item]
        batch = candidate
    if batch:
        groups.append(batch)
    return groups
