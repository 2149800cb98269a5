"""Process environments: what any program needs to start, and swapping os.environ for a block."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# What any program needs to start, nothing AWS: taken from this process into a child's.
PROCESS_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")

_exact_lock = threading.Lock()  # os.environ is process-wide: one exact environment at a time


def process_basics() -> dict[str, str]:
    """This process's values of PROCESS_BASICS (those it has)."""
    return {name: os.environ[name] for name in PROCESS_BASICS if name in os.environ}


@contextmanager
def overlaid_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set `variables` for the duration of the block, then restore the old values."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def exact_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """os.environ is exactly `variables` during the block (one such block at a time), then as before."""
    with _exact_lock:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(variables)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)
