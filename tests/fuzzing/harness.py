"""Run the worker's CLI on fuzz cases, each in its own process under a wall clock and memory limits.

A case passes when the worker exits 0 with images of the sizes its manifest lists, or 3 with an
error manifest naming a reason: never 1 (a fault of the worker), a signal, a hang, or a peak
resident set over the budget (read exactly from the child's rusage, not sampled).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.fuzzing.mutations import Case, mutate

# README "Limits": a job's peak resident set stays under 1 GB whatever the input.
MEMORY_BUDGET_BYTES = 1_000_000_000
# Address space: above the budget (threads reserve stacks and arenas they never touch), so an
# allocation of gigabytes fails in the child instead of swapping the machine.
ADDRESS_SPACE_LIMIT = 4 << 30
WALL_SECONDS = 60.0
AT_CHOICES = ("auto", "0", "1.5", "50%", "100%", "3600")
FORMAT_CHOICES = ("png", "jpeg", "webp")
WIDTH_CHOICES: tuple[tuple[str, ...], ...] = ((), (), ("320",), ("64", "7680"))


@dataclass(frozen=True)
class Outcome:
    case: Case
    argv: tuple[str, ...]
    exit_code: int | None  # None: killed by a signal or the wall clock
    signal: int | None
    timed_out: bool
    peak_rss: int  # bytes
    seconds: float
    reason: str | None  # the error manifest's reason for exit 3
    problem: str | None  # None: the case passed

    @property
    def label(self) -> str:
        if self.timed_out:
            return "hang"
        if self.signal is not None:
            return f"signal {self.signal}"
        return f"exit {self.exit_code}" + (f" {self.reason}" if self.reason else "")


def options_for(seed: int) -> tuple[str, ...]:
    """Worker options for a case, chosen from its seed as the mutation is."""
    rng = random.Random(seed ^ 0x5EED)
    widths = rng.choice(WIDTH_CHOICES)
    return (
        "--at",
        rng.choice(AT_CHOICES),
        "--format",
        rng.choice(FORMAT_CHOICES),
        *(part for width in widths for part in ("--width", width)),
    )


def run_case(case: Case, folder: Path, wall_seconds: float = WALL_SECONDS) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    video, out = folder / "input.mp4", folder / "out"
    video.write_bytes(case.data)
    argv = (str(video), "--out", str(out), *options_for(case.seed))
    started = time.monotonic()
    report = folder / "rusage.json"
    with (folder / "log.txt").open("wb") as log:
        launcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fuzzing.launch",
                str(report),
                sys.executable,
                "-m",
                "thumbnailer",
                *argv,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "FUZZ_ADDRESS_SPACE_LIMIT": str(ADDRESS_SPACE_LIMIT),
            },
            start_new_session=True,  # the worker in the launcher's group: killed together
        )
        try:
            launcher.wait(timeout=wall_seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
            timed_out = True
    seconds = time.monotonic() - started
    measured = json.loads(report.read_text()) if report.is_file() and not timed_out else None
    code = os.waitstatus_to_exitcode(measured["status"]) if measured else -signal.SIGKILL
    outcome = Outcome(
        case=case,
        argv=argv,
        exit_code=code if code >= 0 else None,
        signal=-code if code < 0 and not timed_out else None,
        timed_out=timed_out,
        peak_rss=measured["maxrss_kib"] * 1024 if measured else 0,
        seconds=seconds,
        reason=None,
        problem=None,
    )
    return _judge(outcome, out, video.name)


def _judge(outcome: Outcome, out: Path, name: str) -> Outcome:
    problem, reason = None, None
    manifest_path = out / f"{name}.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    if outcome.timed_out or outcome.signal is not None:
        problem = outcome.label
    elif outcome.peak_rss > MEMORY_BUDGET_BYTES:
        problem = (
            f"peak RSS {outcome.peak_rss / 1e6:.0f} MB over the {MEMORY_BUDGET_BYTES / 1e6:.0f} MB budget"
        )
    elif manifest is None:
        problem = f"exit {outcome.exit_code} without a manifest"
    elif outcome.exit_code == 3:
        reason = manifest.get("error", {}).get("reason")
        problem = None if reason else "exit 3 without a reason"
    elif outcome.exit_code == 0:
        problem = _check_images(manifest)
    else:
        error = manifest.get("error", {})
        problem = f"exit {outcome.exit_code}: {error.get('reason')}: {error.get('message')}"
    return Outcome(**{**outcome.__dict__, "reason": reason, "problem": problem})


def _check_images(manifest: dict[str, object]) -> str | None:
    thumbnails = manifest.get("thumbnails")
    if manifest.get("status") != "ok" or not isinstance(thumbnails, list) or not thumbnails:
        return "exit 0 without an ok manifest listing thumbnails"
    for listed in thumbnails:
        with Image.open(listed["name"]) as image:
            if image.size != (listed["width"], listed["height"]):
                listed_size = f"{listed['width']}x{listed['height']}"
                return f"{listed['name']}: {image.size} but the manifest says {listed_size}"
    return None


def run_all(cases: Iterable[Case], folder: Path, workers: int = 2) -> list[Outcome]:
    """Every case, `workers` at a time, each in folder/<index>; in the order given."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_case, case, folder / f"{i:05d}") for i, case in enumerate(cases)]
        return [future.result() for future in futures]


def make_cases(sources: Mapping[str, bytes], count: int, seed: int) -> list[Case]:
    """`count` cases from `seed`: case i mutates a source chosen by its own seed."""
    names = sorted(sources)
    cases = []
    for i in range(count):
        case_seed = seed * 1_000_003 + i
        name = random.Random(case_seed).choice(names)
        others = [sources[n] for n in names if n != name]
        cases.append(mutate(name, sources[name], case_seed, others))
    return cases


def summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """How many cases ended each way: "exit 0", "exit 3 <reason>", "FAIL <problem class>"."""
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        counts[f"FAIL {outcome.problem.split(':')[0]}" if outcome.problem else outcome.label] += 1
    return dict(sorted(counts.items()))
