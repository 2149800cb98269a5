"""Fixtures for every test: the real-world corpus, skipped cleanly without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.paths import MEDIA_DIR


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """The real-world corpus (../shared/media beside the clone); tests using it skip without it."""
    if not (MEDIA_DIR / "SOURCES.md").is_file():
        pytest.skip(f"real-world corpus not found at {MEDIA_DIR} (expected beside the clone)")
    return MEDIA_DIR
