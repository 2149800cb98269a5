"""Command line: `python -m thumbnailer VIDEO --out DIR [--at SPEC] [--format F] [--width N]...`
(and `--storyboard [SPEC]`, `--count N`, `--preview [SPEC]`: output_options.py).

VIDEO is a local path or s3://bucket/key. The same pipeline as the task; thumbnails and the
manifest go to DIR and the manifest is printed. Exit codes as the task's (README).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from thumbnailer.errors import EXIT_INVALID_OPTIONS, EXIT_UNUSABLE_VIDEO, InvalidOptionsError
from thumbnailer.inputs import LocalInput, S3Input
from thumbnailer.logs import get_logger
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options, apply_layer, from_environment, with_metadata
from thumbnailer.outcome import execute
from thumbnailer.pipeline import Input
from thumbnailer.s3_fetcher import head_source
from thumbnailer.sinks import DirectorySink

CLI_LABELS = {
    "at": "option --at",
    "format": "option --format",
    "widths": "option --width",
    "storyboard": "option --storyboard",
    "count": "option --count",
    "preview": "option --preview",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m thumbnailer", description=__doc__.splitlines()[0])
    parser.add_argument("video", help="a local file or s3://bucket/key")
    parser.add_argument("--out", required=True, type=Path, help="directory for the thumbnails and manifest")
    parser.add_argument("--at", help="seconds, timecode (01:32.5), percentage (25%%) or auto")
    parser.add_argument("--format", help="jpeg, png or webp")
    parser.add_argument("--width", action="append", default=[], help="thumbnail width; repeat for several")
    parser.add_argument(
        "--storyboard", nargs="?", const="on", help="sprite + WebVTT + JSON: on, jpeg, webp, off[,width=N]"
    )
    parser.add_argument("--count", help="this many stills, evenly spaced (0-100)")
    parser.add_argument(
        "--preview",
        nargs="?",
        const="on",
        help="animated preview: on, webp, gif, off[,start=T][,duration=S][,fps=N][,width=N]",
    )
    return parser.parse_args(argv)


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise InvalidOptionsError(f"{uri!r} is not s3://bucket/key")
    return bucket, key


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logger = get_logger()
    cli_layer = {"at": args.at, "format": args.format, "widths": ",".join(args.width) or None}
    cli_layer |= {"storyboard": args.storyboard, "count": args.count, "preview": args.preview}
    try:
        defaults = from_environment(os.environ)
        apply_layer(defaults, cli_layer, CLI_LABELS)  # flags checked before anything is read
        is_s3 = args.video.startswith("s3://")
        bucket, key = split_s3_uri(args.video) if is_s3 else ("", "")
        path = Path(args.video).expanduser()
    except InvalidOptionsError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return EXIT_INVALID_OPTIONS
    if not is_s3 and not path.is_file():
        # As a missing object in the task (source_not_found): the input, not an option, is wrong.
        print(f"error: {args.video!r} is not a file", file=sys.stderr)
        return EXIT_UNUSABLE_VIDEO
    names = OutputNames(Path(key).name if is_s3 else path.name)

    def prepare() -> tuple[Input, Options]:
        if is_s3:
            source = head_source(bucket, key)
            options = with_metadata(defaults, source.metadata)
            return S3Input(source), apply_layer(options, cli_layer, CLI_LABELS)
        return LocalInput(path), apply_layer(defaults, cli_layer, CLI_LABELS)

    code, document = execute(prepare, names, DirectorySink(args.out), logger, {"video": args.video})
    if document is not None:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main())
