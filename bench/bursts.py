"""`make bench-bursts`: a burst of uploads beyond the Fargate vCPU quota, with and without batching.

On the local stack (moto, the template's own resources, real worker processes), N uploads at once
against a quota of 4 vCPUs (`VCPU_QUOTA=4`, `MaxConcurrentTasks` 4): once with `MaxJobsPerTask` 1
(a task per video, as before issue 15) and once with the default 10. Each task holds its slot for
START_DELAY_S before its worker starts, Fargate's start-up scaled down so that the whole burst
arrives within one start-up, as on AWS (where 55 s pass before a task's worker runs): without
it, a local task frees its slot within a second and the next uploads start alone, which no
account would see. Measured: the tasks started,
the jobs each ran, each task's run time, and that nothing was lost or dead-lettered. Modelled
from those, with Fargate's billing rule (per second, one-minute minimum, "from the time you start
to download your container image until the Amazon ECS Task terminates", AWS Fargate pricing
page): the task-seconds billed per video and their price, and how long the burst takes on AWS.
Writes README.md's block between its `bursts` markers and bench/results/bursts.json.

    python -m bench.bursts [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.sections import replace_section
from devkit.paths import REPO_ROOT
from local_stack.chaos import chaos_clip, queued_messages
from local_stack.stack import LocalStack

RESULTS = REPO_ROOT / "bench" / "results" / "bursts.json"
README = REPO_ROOT / "README.md"
QUOTA_VCPUS = 4
MINIMUM_BILLED_S = 60  # Fargate: per second, with a one-minute minimum
# Billed start-up before the worker runs: the image pull (billing starts when it starts). Published:
# 53-62 s from creation to start for a 413 MB image (elasticscale.com, "Reduce AWS Fargate pull
# times with SOCI"), of which about 10 s is the ENI (qiita.com/kjm, "AWS Fargate のイメージサイズ毎
# の起動時間の違い"), which is not billed. So about 45 s billed, 55 s waited: an assumption for this
# image, whose size varies with its build.
BILLED_START_S = 45.0
WAITED_START_S = 55.0
START_DELAY_S = 5.0  # locally: Fargate's start-up, scaled (see the module's docstring)
# Linux/ARM, US East: $0.03238 per vCPU-hour, $0.00356 per GB-hour (README "Where a job runs").
TASK_PRICE_PER_S = (1 * 0.03238 + 2 * 0.00356) / 3600  # the default task: 1 vCPU, 2 GB


@dataclass(frozen=True)
class Burst:
    jobs_per_task: int
    uploads: int
    thumbnails: int
    lost: int
    dead_lettered: int
    tasks: int
    jobs_per_task_seen: dict[str, int]
    max_concurrent_tasks: int
    run_s: list[float]  # each task's worker time (RUNNING to stopped, less the start delay), measured here
    seconds: float

    def billed_s(self) -> list[float]:
        """Each task's billed seconds on AWS: the pull, then the run measured here, at least 60."""
        return [max(MINIMUM_BILLED_S, math.ceil(BILLED_START_S + run)) for run in self.run_s]

    def summary(self) -> dict[str, Any]:
        billed = sum(self.billed_s())
        waited = sum(WAITED_START_S + run for run in self.run_s)
        return {
            "tasks": self.tasks,
            "videos_per_task": round(self.uploads / max(self.tasks, 1), 1),
            "billed_task_s": billed,
            "billed_s_per_video": round(billed / self.uploads, 1),
            "dollars_per_1000_videos": round(billed * TASK_PRICE_PER_S / self.uploads * 1000, 3),
            # Tasks in QUOTA_VCPUS slots, each waited for its start-up then run: the burst's time.
            "aws_minutes": round(waited / QUOTA_VCPUS / 60, 1),
        }


def run_burst(n: int, jobs_per_task: int, work_dir: Path) -> Burst:
    # A task per video runs one job whatever its start-up: no delay needed to measure it.
    delay = START_DELAY_S if jobs_per_task > 1 else 0.0
    keys = [f"videos/burst/{index:05d}.mp4" for index in range(n)]
    body = chaos_clip().read_bytes()
    started = time.monotonic()
    with LocalStack(
        parameters={
            "ThumbnailRuntime": "fargate",
            "MaxConcurrentTasks": str(QUOTA_VCPUS),
            "MaxJobsPerTask": str(jobs_per_task),
        },
        work_dir=work_dir,
        max_parallel_tasks=QUOTA_VCPUS,
        vcpu_quota=QUOTA_VCPUS,
        stack_name=f"bench-bursts-{jobs_per_task}",
        task_start_delay_s=delay,
    ) as stack:
        for key in keys:
            stack.upload(body, key)
        stack.wait_idle(120.0 + 3.0 * n)
        outcomes = list(stack.runner.outcomes.values())
        statuses = Counter(_status(stack, key) for key in keys)
        dead_lettered = queued_messages(stack, stack.outputs["DeadLetterQueueUrl"])
        concurrent = stack.runner.max_concurrent_tasks()
    return Burst(
        jobs_per_task=jobs_per_task,
        uploads=n,
        thumbnails=statuses["ok"],
        lost=n - statuses["ok"] - statuses["error"],
        dead_lettered=dead_lettered,
        tasks=len(outcomes),
        jobs_per_task_seen={str(k): v for k, v in sorted(Counter(len(o.jobs) for o in outcomes).items())},
        max_concurrent_tasks=concurrent,
        run_s=[round(o.stopped_at - o.started_at - delay, 3) for o in outcomes],
        seconds=round(time.monotonic() - started, 1),
    )


def _status(stack: LocalStack, key: str) -> str:
    try:
        return str(stack.manifest(key).get("status"))
    except stack.emulator.client("s3").exceptions.NoSuchKey:
        return "missing"


def render(bursts: list[Burst]) -> str:
    rows = []
    for burst in bursts:
        summary = burst.summary()
        label = "a task per video" if burst.jobs_per_task == 1 else f"up to {burst.jobs_per_task} per task"
        rows.append(
            f"| {label} | {burst.thumbnails}/{burst.uploads} | {burst.dead_lettered} | {summary['tasks']} "
            f"| {summary['videos_per_task']} | {summary['billed_s_per_video']} "
            f"| ${summary['dollars_per_1000_videos']} | {summary['aws_minutes']} |"
        )
    plain, batched = (b.summary() for b in bursts)
    intro = (
        f"**A burst of {bursts[0].uploads:,} uploads against a 4-vCPU quota** (`make bench-bursts`, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} at the start). Measured on "
        "the local stack: thumbnails, dead-lettered events, tasks and each task's run time; modelled for "
        f"AWS (locally, a batching task holds its slot {START_DELAY_S:.0f} s before its worker runs: "
        "Fargate's start-up, scaled) with Fargate's billing (per second, one-minute minimum, from the "
        "image pull: "
        f"{BILLED_START_S:.0f} s assumed billed, {WAITED_START_S:.0f} s waited before the worker runs; "
        "bench/bursts.py names the sources) for the default task (1 vCPU, 2 GB, Linux/ARM):"
    )
    outro = (
        f"Batching starts {plain['tasks'] / max(batched['tasks'], 1):.0f}x fewer tasks and bills "
        f"{plain['billed_s_per_video'] / max(batched['billed_s_per_video'], 0.1):.0f}x fewer "
        "task-seconds per video: a task per video pays the one-minute minimum (and the image pull) for "
        "a second of work. The local run times are of a 2-second 160x120 clip; a 1080p video adds about "
        "a second per job (docs/benchmark.md), which changes the batched figure little and the "
        "unbatched one not at all."
    )
    header = (
        "| batching | thumbnails | dead-lettered | tasks | videos per task "
        "| task-seconds billed per video | per 1,000 videos | minutes on AWS |"
    )
    return "\n".join(
        [
            textwrap.fill(intro, 100),
            "",
            header,
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            textwrap.fill(outro, 100),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bursts", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="uploads in the burst (default 1000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-bursts-") as work:
        bursts = [run_burst(args.n, jobs, Path(work) / f"jobs-{jobs}") for jobs in (1, 10)]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = [{**asdict(b), "model": b.summary()} for b in bursts]
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    section = render(bursts)
    replace_section(README, "bursts", section)
    print(section)
    return 0 if all(b.lost == 0 and b.dead_lettered == 0 for b in bursts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
