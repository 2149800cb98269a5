"""Output names (docs/contract.md): `videos/<rest>` -> `thumbnails/<rest>.<ext>`, `<rest>.json`.

The video's own extension stays in the name, so `a.mp4` and `a.mov` never collide.
"""

from __future__ import annotations

from dataclasses import dataclass

from thumbnailer.errors import InvalidOptions


@dataclass(frozen=True)
class OutputNames:
    """Where one video's outputs go: `stem` is the common prefix of every output name."""

    stem: str

    @classmethod
    def for_key(cls, key: str, video_prefix: str, output_prefix: str) -> OutputNames:
        rest = key[len(video_prefix) :] if video_prefix and key.startswith(video_prefix) else key
        if not rest or rest.endswith("/"):
            raise InvalidOptions(f"key {key!r} names no video file")
        return cls(output_prefix + rest)

    def thumbnail(self, extension: str, width: int | None = None) -> str:
        return f"{self.stem}.{width}w.{extension}" if width is not None else f"{self.stem}.{extension}"

    def manifest(self) -> str:
        return f"{self.stem}.json"
