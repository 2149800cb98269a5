"""Faults the local task runner can inject, and a seeded plan of which upload gets which.

Each fault takes a real path through the worker, ECS's stop report and the recovery function:
- cannot_pull: the task never starts (no exit code, TaskFailedToStart, CannotPullContainerError);
- killed: SIGKILL while the worker runs (137);
- out_of_memory: the task's memory limit, enforced as the kernel's OOM killer does, is set below
  what the worker needs (137, "OutOfMemoryError: Container killed due to memory usage");
- spot_interruption: SIGTERM while the worker runs (143, stopCode SpotInterruption);
- transient_exit_1: S3 unreachable (a closed port), so the worker exits 1 after its retries;
- hang: S3 accepts connections and never answers, and the worker's deadline ends it (124).
A fault hits the first attempt only, or, when `persistent`, every attempt (then the job ends in
an error manifest written by the recovery function).
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    CANNOT_PULL = "cannot_pull"
    KILLED = "killed"
    OUT_OF_MEMORY = "out_of_memory"
    SPOT_INTERRUPTION = "spot_interruption"
    TRANSIENT_EXIT_1 = "transient_exit_1"
    HANG = "hang"


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    persistent: bool = False


@dataclass(frozen=True)
class FaultPlan:
    """Which video key gets which fault; asked by the task runner for every task it runs."""

    by_key: Mapping[str, Fault]

    def for_job(self, job: Mapping[str, Any] | None) -> FaultKind | None:
        if job is None or (fault := self.by_key.get(str(job.get("key")))) is None:
            return None
        return fault.kind if fault.persistent or job.get("attempt", 1) == 1 else None

    def for_jobs(self, jobs: Sequence[Mapping[str, Any]]) -> FaultKind | None:
        """A task's fault: the first of its jobs (in order) with a fault planned for its attempt.

        A batch task (THUMBNAIL_JOBS) is one container: a fault planned for any of its jobs hits
        the whole task, as an image pull, SIGKILL, the OOM killer or a Spot interruption would,
        so every job of that task goes through the recovery together. (S3 unreachable or hung is
        the task's environment too, so those faults also hit every job of the task.)
        """
        return next((kind for job in jobs if (kind := self.for_job(job)) is not None), None)

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for fault in self.by_key.values():
            counted[fault.kind.value] = counted.get(fault.kind.value, 0) + 1
        return counted


def seeded_plan(keys: Iterable[str], rate: float, seed: int, persistent_share: float = 0.25) -> FaultPlan:
    """Each key gets a fault with probability `rate`, a kind at random; a share of them persist."""
    chooser = random.Random(seed)  # noqa: S311 - a test plan, not a secret
    kinds = list(FaultKind)
    plan: dict[str, Fault] = {}
    for key in keys:
        if chooser.random() < rate:
            plan[key] = Fault(chooser.choice(kinds), persistent=chooser.random() < persistent_share)
    return FaultPlan(plan)


class StalledEndpoint:
    """A TCP server on loopback that accepts every connection and never answers: a hung S3."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="stalled-endpoint", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self._held.append(self._server.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for connection in self._held:
            connection.close()
        self._server.close()


def closed_port_url() -> str:
    """An address where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
