"""How many more worker tasks may start now: MaxConcurrentTasks minus the tasks still running.

Counted with ListTasks (desiredStatus RUNNING covers PROVISIONING, PENDING and RUNNING tasks;
startedBy the launcher's constant), once per invocation, then reduced by each task this
invocation starts. ListTasks is eventually consistent and invocations run side by side, so the
count can lag by the tasks started in the last seconds; the periodic drain corrects it, and ECS's
own vCPU quota stays the hard limit (a refused RunTask puts the job back in the queue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from thumbnail_launcher.tasks import STARTED_BY, THROTTLING_CODES

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient


@dataclass
class TaskSlots:
    client: ECSClient
    cluster_arn: str
    max_concurrent_tasks: int
    _free: int | None = field(default=None, init=False)

    def free(self) -> int:
        """Slots free now (0 when ListTasks is throttled: the job then waits rather than overshoots).

        Any other ListTasks error (no such cluster, access denied) is raised: a misconfigured stack
        must fail its events, not queue them forever."""
        if self._free is None:
            self._free = max(self.max_concurrent_tasks - self._running(), 0)
        return self._free

    def take(self) -> bool:
        """One slot for a task about to start; False when none is free."""
        if self.free() <= 0:
            return False
        self._free = self.free() - 1
        return True

    def give_back(self) -> None:
        """The task did not start after all."""
        self._free = self.free() + 1

    def _running(self) -> int:
        try:
            pages = self.client.get_paginator("list_tasks").paginate(
                cluster=self.cluster_arn, startedBy=STARTED_BY, desiredStatus="RUNNING"
            )
            return sum(len(page.get("taskArns", [])) for page in pages)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in THROTTLING_CODES:
                return self.max_concurrent_tasks
            raise
