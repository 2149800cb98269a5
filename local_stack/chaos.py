"""`make chaos`: many uploads on the local stack with faults injected at random; nothing may be lost.

Each upload must end as a thumbnail or as an error manifest that names why (the worker's, or the
recovery function's once the attempts ran out); no attempt of a job may have started two tasks;
and no event may end in the launcher's dead-letter queue (with VCPU_QUOTA, a burst beyond the
quota waits in the pending-jobs queue instead).
The last line printed is one JSON object, for scripts.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.paths import REPO_ROOT
from local_stack.faults import FaultPlan, seeded_plan
from local_stack.stack import LocalStack
from local_stack.task_runner import TaskOutcome
from local_stack.video import make_video

CLIP = REPO_ROOT / ".local-stack" / "chaos-clip-2s-160x120.mp4"
# Short backoffs: the template's defaults (30 s, doubling) would make a local run take hours.
# The faults are a Fargate task's (an image pull, SIGKILL, Spot...): every job runs in a task.
PARAMETERS = {"RetryDelaySeconds": "1", "ThumbnailRuntime": "fargate"}
PARALLEL_TASKS = 4


@dataclass
class Verdict:
    """How one upload ended."""

    key: str
    fault: str
    ending: str  # thumbnail | error_manifest | lost
    reason: str = ""


@dataclass
class Tally:
    verdicts: list[Verdict] = field(default_factory=list)
    tasks: int = 0
    retried: int = 0
    duplicated: int = 0
    dead_lettered: int = 0  # events in the launcher's dead-letter queue
    max_concurrent_tasks: int = 0  # the most tasks the runner saw running at once

    def summary(self, plan: FaultPlan, seconds: float) -> dict[str, Any]:
        endings = Counter(v.ending for v in self.verdicts)
        return {
            "uploads": len(self.verdicts),
            "thumbnails": endings["thumbnail"],
            "error_manifests": endings["error_manifest"],
            "lost": endings["lost"],
            "duplicated": self.duplicated,
            "retried": self.retried,
            "tasks": self.tasks,
            "dead_lettered": self.dead_lettered,
            "max_concurrent_tasks": self.max_concurrent_tasks,
            "by_fault": plan.counts(),
            "seconds": round(seconds, 1),
        }


def run(
    n: int, fault_rate: float, seed: int, timeout_s: float | None = None, vcpu_quota: float | None = None
) -> int:
    keys = [f"videos/chaos/{index:05d}.mp4" for index in range(n)]
    plan = seeded_plan(keys, fault_rate, seed)
    body = chaos_clip().read_bytes()
    started = time.monotonic()
    quota = "" if vcpu_quota is None else f", Fargate vCPU quota {vcpu_quota:g}"
    print(
        f"chaos: {n} uploads, fault rate {fault_rate}, seed {seed}{quota}: {plan.counts() or 'no faults'}",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="chaos-") as work_dir,
        LocalStack(
            parameters=PARAMETERS,
            faults=plan,
            work_dir=Path(work_dir),
            max_parallel_tasks=PARALLEL_TASKS,
            vcpu_quota=vcpu_quota,
        ) as stack,
    ):
        for key in keys:
            stack.upload(body, key)
        stack.wait_idle(timeout_s or 120.0 + 3.0 * n)
        tally = judge(stack, keys, plan)
    summary = tally.summary(plan, time.monotonic() - started)
    print_table(tally.verdicts)
    print(json.dumps(summary), flush=True)
    return 0 if summary["lost"] == summary["duplicated"] == summary["dead_lettered"] == 0 else 1


def judge(stack: LocalStack, keys: Sequence[str], plan: FaultPlan) -> Tally:
    """Every upload's ending, from what the bucket holds, and the task counts from the runner."""
    outcomes = list(stack.runner.outcomes.values())
    tally = Tally(tasks=len(outcomes), max_concurrent_tasks=stack.runner.max_concurrent_tasks())
    tally.dead_lettered = queued_messages(stack, stack.outputs["DeadLetterQueueUrl"])
    tally.retried = sum(1 for o in outcomes if any(job.get("attempt", 1) > 1 for job in o.jobs))
    tally.duplicated = duplicated_attempts(outcomes)
    s3 = stack.emulator.client("s3")
    for key in keys:
        fault = plan.by_key.get(key)
        label = (
            "none" if fault is None else fault.kind.value + (" (every attempt)" if fault.persistent else "")
        )
        tally.verdicts.append(Verdict(key, label, *ending(s3, stack, key)))
    return tally


def queued_messages(stack: LocalStack, queue_url: str) -> int:
    attributes = stack.emulator.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def ending(s3: Any, stack: LocalStack, key: str) -> tuple[str, str]:
    try:
        manifest = json.loads(s3.get_object(Bucket=stack.bucket, Key=stack.manifest_key(key))["Body"].read())
    except s3.exceptions.NoSuchKey:
        return "lost", "no manifest"
    if manifest.get("status") == "ok" and all(
        _exists(s3, stack.bucket, t["name"]) for t in manifest["thumbnails"]
    ):
        return "thumbnail", ""
    reason = (manifest.get("error") or {}).get("reason")
    return (
        ("error_manifest", str(reason))
        if manifest.get("status") == "error" and reason
        else ("lost", "unreadable")
    )


def duplicated_attempts(outcomes: Iterable[TaskOutcome]) -> int:
    """Attempts (one video version, one job chain, one attempt number) that ran more than one task."""
    per_attempt = Counter(
        (job.get("key"), job.get("version_id"), job.get("origin"), job.get("attempt"))
        for o in outcomes
        for job in o.jobs  # each job of a batch task
    )
    return sum(1 for count in per_attempt.values() if count > 1)


def print_table(verdicts: Sequence[Verdict]) -> None:
    rows: dict[str, Counter[str]] = {}
    for verdict in verdicts:
        rows.setdefault(verdict.fault, Counter())[verdict.ending] += 1
    reasons = Counter((v.fault, v.reason) for v in verdicts if v.reason)
    print(f"{'fault':32} {'uploads':>8} {'thumbnail':>10} {'error manifest':>15} {'lost':>6}")
    for fault, counts in sorted(rows.items()):
        total = sum(counts.values())
        print(
            f"{fault:32} {total:8} {counts['thumbnail']:10} {counts['error_manifest']:15} {counts['lost']:6}"
        )
    for (fault, reason), count in sorted(reasons.items()):
        print(f"  {fault}: {count} x {reason}")


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def chaos_clip() -> Path:
    """The 2 s, 160x120 clip every chaos upload is (made once, kept in .local-stack/)."""
    if not CLIP.is_file():
        make_video(CLIP, seconds=2.0, width=160, height=120, fps=10, black_intro_s=0.3)
    return CLIP


def main(argv: Mapping[str, Any]) -> int:
    try:
        quota = argv.get("vcpu_quota")
        return run(
            int(argv["n"]),
            float(argv["fault_rate"]),
            int(argv["seed"]),
            vcpu_quota=None if quota is None else float(quota),
        )
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
        return 130
