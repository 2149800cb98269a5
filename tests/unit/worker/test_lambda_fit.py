"""The rule that hands a job too heavy for the worker function to Fargate (lambda_fit.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from thumbnailer.errors import InvalidOptionsError
from thumbnailer.lambda_fit import Limits, too_heavy

LIMITS = Limits.from_environment({})


def info(width: int = 1920, height: int = 1080, duration: float | None = 600.0) -> Any:
    return SimpleNamespace(coded_width=width, coded_height=height, duration=duration)


def options(kind: str) -> Any:
    return SimpleNamespace(at=SimpleNamespace(kind=kind))


def test_a_common_video_fits() -> None:
    assert too_heavy(info(), options("auto"), 300_000_000, LIMITS) is None
    assert too_heavy(info(3840, 2160), options("seconds"), None, LIMITS) is None


def test_long_large_and_high_bitrate_auto_are_handed_off() -> None:
    assert "duration" in (too_heavy(info(duration=5 * 3600), options("seconds"), None, LIMITS) or "")
    assert "pixels" in (too_heavy(info(7680, 4320), options("seconds"), None, LIMITS) or "")
    # 600 s at 200 Mbit/s: 15 GB; `auto` decodes 20 keyframes of it.
    assert "Mbit/s" in (too_heavy(info(), options("auto"), 15_000_000_000, LIMITS) or "")
    assert too_heavy(info(), options("seconds"), 15_000_000_000, LIMITS) is None


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_limit_fails_fast_naming_it(value: str) -> None:
    with pytest.raises(InvalidOptionsError, match="LAMBDA_MAX_PIXELS"):
        Limits.from_environment({"LAMBDA_MAX_PIXELS": value})
