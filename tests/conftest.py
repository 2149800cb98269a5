"""Shared test helpers: where the real-world corpus lives, and skipping cleanly without it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
MEDIA_DIR = SHARED_DIR / "media"
FFPROBE_DIR = SHARED_DIR / "media-ffprobe"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """The real-world corpus (../shared/media beside the clone); tests using it skip without it."""
    if not (MEDIA_DIR / "SOURCES.md").is_file():
        pytest.skip(f"real-world corpus not found at {MEDIA_DIR} (expected beside the clone)")
    return MEDIA_DIR
