"""Where things are: the repository's root and the real-world corpus shared beside the clone."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
MEDIA_DIR = SHARED_DIR / "media"
FFPROBE_DIR = SHARED_DIR / "media-ffprobe"
