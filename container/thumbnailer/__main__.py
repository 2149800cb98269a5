"""Command line: `python -m thumbnailer VIDEO [VIDEO ...] --out DIR [--at SPEC] [--format F] [--width N]...`
(and `--storyboard [SPEC]`, `--count N`, `--preview [SPEC]`: output_options.py).

Each VIDEO is a local path or s3://bucket/key, handled on its own by the task's pipeline: its
thumbnails and manifest go to DIR (named after the video, as the task names them), its manifest
is printed as one JSON line on stdout as soon as it is written, and it has its own exit status.
The process exits with the worst of them (errors.worst_exit_code). Start-up (imports, the S3 client)
is paid once for all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from thumbnailer.errors import (
    EXIT_INVALID_OPTIONS,
    EXIT_UNUSABLE_VIDEO,
    InvalidOptionsError,
    SourceNotFoundError,
    worst_exit_code,
)
from thumbnailer.logs import get_logger
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options, apply_layer, from_environment, with_metadata
from thumbnailer.outcome import execute
from thumbnailer.pipeline import Input
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
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="a local file or s3://bucket/key")
    parser.add_argument("--out", required=True, type=Path, help="directory for the thumbnails and manifests")
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
    cli_layer = {"at": args.at, "format": args.format, "widths": ",".join(args.width) or None}
    cli_layer |= {"storyboard": args.storyboard, "count": args.count, "preview": args.preview}
    try:
        defaults = from_environment(os.environ)
        apply_layer(defaults, cli_layer, CLI_LABELS)  # flags checked before anything is read
    except InvalidOptionsError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return EXIT_INVALID_OPTIONS
    job = _Job(defaults, cli_layer, DirectorySink(args.out))
    return worst_exit_code([job.run(video) for video in args.videos])


class _Job:
    """One input after another, into one directory; output names already used are refused."""

    def __init__(self, defaults: Options, cli_layer: dict[str, str | None], sink: DirectorySink) -> None:
        self.defaults = defaults
        self.cli_layer = cli_layer
        self.sink = sink
        self.logger = get_logger()
        self.used_names: dict[str, str] = {}  # manifest name -> the input that took it

    def run(self, video: str) -> int:
        try:
            names, prepare = self._plan(video)
        except InvalidOptionsError as error:
            print(f"error: {video}: {error.message}", file=sys.stderr)
            return EXIT_INVALID_OPTIONS
        except SourceNotFoundError as error:  # as a missing object in the task: the input is wrong
            print(f"error: {error.message}", file=sys.stderr)
            return EXIT_UNUSABLE_VIDEO
        code, document = execute(prepare, names, self.sink, self.logger, {"video": video})
        if document is not None:
            print(json.dumps(document, ensure_ascii=False), flush=True)
        return code

    def _plan(self, video: str) -> tuple[OutputNames, Callable[[], tuple[Input, Options]]]:
        is_s3 = video.startswith("s3://")
        bucket, key = split_s3_uri(video) if is_s3 else ("", "")
        path = Path(video).expanduser()
        if not is_s3 and not path.is_file():
            raise SourceNotFoundError(f"{video!r} is not a file")
        names = OutputNames(Path(key).name if is_s3 else path.name)
        taken = self.used_names.setdefault(names.manifest(), video)
        if taken != video:
            raise InvalidOptionsError(f"its outputs would overwrite those of {taken!r} (same file name)")

        def prepare() -> tuple[Input, Options]:
            if is_s3:
                from thumbnailer.inputs import S3Input  # boto3: only when an input is in S3
                from thumbnailer.s3_fetcher import open_source

                opened = open_source(bucket, key)
                options = with_metadata(self.defaults, opened.source.metadata)
                return S3Input(opened), apply_layer(options, self.cli_layer, CLI_LABELS)
            from thumbnailer.inputs import LocalInput

            return LocalInput(path), apply_layer(self.defaults, self.cli_layer, CLI_LABELS)

        return names, prepare


if __name__ == "__main__":
    from thumbnailer.startup import skip_optional_imports

    skip_optional_imports()
    sys.exit(main())
