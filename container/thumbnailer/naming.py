"""Output names (docs/contract.md): `videos/<rest>` -> `thumbnails/<rest>.<ext>`, `<rest>.json`.

The video's own extension stays in the name, so `a.mp4` and `a.mov` never collide. The extra
outputs (issue 13) add a word no thumbnail name has: `<rest>.storyboard.jpg`, `.storyboard.vtt`,
`.storyboard.json`, `<rest>.still-01.jpg` ..., `<rest>.preview.webp`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from thumbnailer.errors import InvalidOptionsError

# S3 refuses longer keys (KeyTooLongError); the outputs' keys are longer than the video's.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class OutputNames:
    """Where one video's outputs go: `stem` is the common prefix of every output name."""

    stem: str

    @classmethod
    def for_key(cls, key: str, video_prefix: str, output_prefix: str) -> OutputNames:
        """Names for a video's key; the manifest's must fit, so that an error manifest can be written."""
        rest = key[len(video_prefix) :] if video_prefix and key.startswith(video_prefix) else key
        if not rest or rest.endswith("/"):
            raise InvalidOptionsError(f"key {key!r} names no video file")
        names = cls(output_prefix + rest)
        names.manifest()
        return names

    def thumbnail(self, extension: str, width: int | None = None) -> str:
        name = f"{self.stem}.{width}w.{extension}" if width is not None else f"{self.stem}.{extension}"
        return _fitting(name)

    def thumbnails(self, extension: str, widths: Sequence[int]) -> list[str]:
        """Every thumbnail's name, checked before any is written."""
        sizes: list[int | None] = [*widths] or [None]
        return [self.thumbnail(extension, width) for width in sizes]

    def manifest(self) -> str:
        return _fitting(f"{self.stem}.json")

    def storyboard(self, extension: str) -> str:
        """The sprite; its VTT and JSON map sit beside it (`storyboard_vtt`, `storyboard_json`)."""
        return _fitting(f"{self.stem}.storyboard.{extension}")

    def storyboard_vtt(self) -> str:
        return _fitting(f"{self.stem}.storyboard.vtt")

    def storyboard_json(self) -> str:
        return _fitting(f"{self.stem}.storyboard.json")

    def still(self, number: int, count: int, extension: str) -> str:
        """Still `number` (1-based) of `count`: two digits at least, all of one width (`still-001`)."""
        digits = max(2, len(str(count)))
        return _fitting(f"{self.stem}.still-{number:0{digits}d}.{extension}")

    def preview(self, extension: str) -> str:
        return _fitting(f"{self.stem}.preview.{extension}")


def _fitting(name: str) -> str:
    if (size := len(name.encode())) > MAX_KEY_BYTES:
        raise InvalidOptionsError(
            f"the output key {name[:60]!r}... would be {size} bytes, "
            f"over S3's limit of {MAX_KEY_BYTES} bytes: use a shorter video key"
        )
    return name
