"""A stopped batch task (THUMBNAIL_JOBS): which of its jobs are done and which need another attempt.

The worker runs the jobs in order and writes each one's manifest when it ends (docs/contract.md
"Several jobs per task"), so a task that stopped early leaves, in order: jobs with their own
manifest, the job it was running (none), and jobs it never reached (none). Each job is decided
alone: one with its manifest is done (or, exit 1, retried); every other is retried in a task of
its own. Which job killed the task is not known for sure (a Spot interruption or a SIGKILL hits
whichever runs), so none of them is batched again with the others: a video that fails every
time cannot take its batch mates' attempts with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from thumbnail_launcher.failures import worker_reported
from thumbnail_launcher.jobs import Job
from thumbnail_launcher.recovery import Decision, Retry, decide
from thumbnail_launcher.settings import RecoverySettings
from thumbnail_launcher.stops import EXIT_OK, EXIT_UNEXPECTED, StopKind, StoppedTask

# Exit codes after which a job needs nothing more: done, or the worker wrote why it can't be.
_FINAL_EXIT_CODES = frozenset({EXIT_OK, 2, 3})


def needs_manifests(task: StoppedTask) -> bool:
    """Exit 0 (the worst of the jobs' own statuses) says every job is done: nothing to read.

    (A job without a manifest after exit 0 had been superseded by a newer version of its video.)
    """
    return task.kind is not StopKind.SUCCEEDED


def decide_batch(
    task: StoppedTask, manifests: Sequence[dict[str, Any] | None], settings: RecoverySettings
) -> list[tuple[Job, Decision]]:
    """Each job with its decision; `manifests` are the jobs' current manifests, in the same order."""
    if not needs_manifests(task):
        return [(job, None) for job in task.jobs]
    decisions: list[tuple[Job, Decision]] = []
    running_found = False
    for job, manifest in zip(task.jobs, manifests, strict=True):
        if manifest is not None and worker_reported(manifest, job):
            code = _exit_code(manifest)
            by_itself = dataclasses.replace(task, job=job, batch=(), exit_code=code)
            decisions.append(
                (job, None if code in _FINAL_EXIT_CODES else _alone(decide(by_itself, settings)))
            )
        elif not running_found and task.retryable:
            running_found = True  # the job the task was running: the stop is its own
            decisions.append((job, _alone(decide(dataclasses.replace(task, job=job, batch=()), settings))))
        else:
            # Never reached, or (exit 2 or 3 without its manifest) not known to have run: again, at
            # once. (A superseded video's next task writes nothing and exits 0.)
            reason = f"not_reached: the batch task stopped ({task.kind.value}) without this job's manifest"
            decisions.append((job, Retry(job.next_attempt(), reason, 0, alone=True)))
    return decisions


def _alone(decision: Decision) -> Decision:
    return dataclasses.replace(decision, alone=True) if isinstance(decision, Retry) else decision


def _exit_code(manifest: dict[str, Any]) -> int:
    if manifest.get("status") == "ok":
        return EXIT_OK
    error = manifest.get("error")
    code = error.get("exit_code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else EXIT_UNEXPECTED
