"""The original blog design, as one process: download the whole object, then ask ffmpeg for one frame.

`python -m bench.original BUCKET KEY POSITION_S OUT.png`. boto3 `download_file` to a temporary
directory, then `ffmpeg -i FILE -ss POS -frames:v 1 -vcodec png OUT` with the ffmpeg binary of
the imageio-ffmpeg wheel (output seeking: ffmpeg decodes from the start up to POS).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import imageio_ffmpeg


def run(bucket: str, key: str, position_s: float, out: Path) -> dict[str, float]:
    """Make the thumbnail; returns how long the download and ffmpeg took, in seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-original-") as workdir:
        local = Path(workdir) / "video.mp4"
        started = time.perf_counter()
        boto3.client("s3").download_file(bucket, key, str(local))
        downloaded = time.perf_counter()
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(local),
                "-ss",
                f"{position_s:.3f}",
                "-frames:v",
                "1",
                "-vcodec",
                "png",
                str(out),
            ],
            check=True,
        )
        return {
            "download_s": round(downloaded - started, 3),
            "ffmpeg_s": round(time.perf_counter() - downloaded, 3),
        }


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m bench.original BUCKET KEY POSITION_S OUT.png", file=sys.stderr)
        return 2
    bucket, key, position, out = argv
    print(json.dumps(run(bucket, key, float(position), Path(out))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
