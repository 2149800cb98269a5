"""What the fuzzer mutates: the real-world corpus (when present beside the clone) and synthetic clips."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from devkit.paths import MEDIA_DIR
from tests.unit.worker import synthetic

# Larger corpus files (4K, 3 MB) cost seconds per case: the in-suite run leaves them to `make fuzz`.
SUITE_MAX_BYTES = 1 << 20


def synthetic_sources(folder: Path) -> dict[str, bytes]:
    """Small H.264 clips: moov at the end and at the front, anamorphic and rotated."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "synthetic-moov-end.mp4": {"frames": 30},
        "synthetic-faststart.mp4": {"frames": 30, "faststart": True},
        "synthetic-anamorphic.mp4": {"frames": 20, "sar": Fraction(4, 3), "gop": 5},
        "synthetic-rotated.mp4": {"frames": 20, "rotation": 90, "faststart": True},
    }
    sources = {}
    for name, options in made.items():
        clip = synthetic.make_clip(folder / name, **options)  # type: ignore[arg-type]
        sources[name] = clip.path.read_bytes()
    return sources


def corpus_sources(max_bytes: int | None = None) -> dict[str, bytes]:
    """The corpus's videos (none when it is absent), up to `max_bytes` each."""
    if not (MEDIA_DIR / "SOURCES.md").is_file():
        return {}
    return {
        path.name: path.read_bytes()
        for path in sorted(MEDIA_DIR.iterdir())
        if path.suffix.lower() in {".mp4", ".mov", ".m4v"}
        and (max_bytes is None or path.stat().st_size <= max_bytes)
    }


def load_sources(folder: Path, max_bytes: int | None = None) -> dict[str, bytes]:
    return {**synthetic_sources(folder), **corpus_sources(max_bytes)}
