"""A background loop of the local stack: a daemon thread that repeats one step until stopped.

The event pump, the queue poller and the schedules each run one. A step that fails is logged and
kept in `errors`, and the loop goes on after a short pause, as the services they stand in for do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)
PAUSE_AFTER_ERROR_S = 0.5


class Loop:
    def __init__(self, name: str, step: Callable[[], None], *, every_s: float = 0.0) -> None:
        """`step` runs again at once when it returns (it waits itself, a long poll), or every
        `every_s` seconds."""
        self.name = name
        self._step = step
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._step()
            except Exception as error:  # one bad answer must not end the loop
                LOG.exception("%s failed", self.name)
                self.errors.append(repr(error))
                self._stop.wait(PAUSE_AFTER_ERROR_S)
