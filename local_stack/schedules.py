"""EventBridge schedule rules, locally: the target function invoked with the rule's input, on a
short fixed period (seconds, not the rule's minutes), so that a local run sees what a schedule does
(the drain of the pending-jobs queue) without waiting for it."""

from __future__ import annotations

import logging

from local_stack.deploy import ScheduleRoute
from local_stack.events import EventPump
from local_stack.loops import Loop

LOG = logging.getLogger(__name__)


class LocalSchedule:
    def __init__(self, pump: EventPump, route: ScheduleRoute, *, interval_s: float) -> None:
        self._pump = pump  # invokes the function as its execution environment would
        self.route = route
        self._loop = Loop(f"schedule {route.rule}", self._run_once, every_s=interval_s)
        self.runs = 0

    def start(self) -> LocalSchedule:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()

    def idle(self) -> bool:
        """A schedule is never work in flight of its own: what it starts, the others report."""
        return True

    def _run_once(self) -> None:
        invocation = self._pump.invoke(self.route.event)
        self.runs += 1
        if invocation.error is not None:
            LOG.warning("scheduled invocation of %s failed: %s", self.route.rule, invocation.error)
