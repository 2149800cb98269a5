"""`python -m bench.encode [VIDEO] [--at SECONDS]`: what encoding one frame costs, against its decode.

Decodes the keyframe at `--at` of the benchmark's 10-minute 1080p video (bench/cache/, made by
`make bench` or `bench.videos.ensure_videos`), converts it to RGB as the worker does, then times
each encoder setting on that picture (best of `--repeats`) and checks that every PNG decodes to
exactly the same pixels. The worker's own settings are `render.encode`; the rest are the
alternatives weighed in render.py's comment. Prints one line per setting and the load average.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import av
from PIL import Image

from bench.videos import CACHE_DIR, CACHE_VERSION
from thumbnailer import colour, render

DEFAULT_VIDEO = CACHE_DIR / f"v{CACHE_VERSION}-full-600s-moov-front.mp4"


def best_ms(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000, result


def _decode(video: Path, at: float) -> Callable[[], av.VideoFrame]:
    """Decoding the keyframe at or after `at` with a fresh decoder (its packet read once, untimed)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        container.seek(round(at / float(stream.time_base or 1)), stream=stream)
        packet = next(p for p in container.demux(stream) if p.size)
        name, extradata = stream.codec_context.name, stream.codec_context.extradata

    def run() -> av.VideoFrame:
        decoder = av.CodecContext.create(name, "r")
        assert isinstance(decoder, av.VideoCodecContext)
        decoder.extradata = extradata
        frames = [*decoder.decode(packet), *decoder.decode(None)]
        assert isinstance(frames[0], av.VideoFrame)
        return frames[0]

    return run


def pillow_png(picture: Image.Image, **options: int) -> Callable[[], bytes]:
    def run() -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, "PNG", **options)
        return buffer.getvalue()

    return run


def ffmpeg_png(picture: Image.Image, pred: str, level: int | None) -> Callable[[], bytes]:
    def run() -> bytes:
        frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
        codec = av.CodecContext.create("png", "w")
        codec.width, codec.height, codec.pix_fmt = picture.width, picture.height, "rgb24"
        if level is not None:
            codec.compression_level = level
        codec.options = {"pred": pred}
        return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])

    return run


def settings(picture: Image.Image) -> list[tuple[str, Callable[[], bytes]]]:
    worker: list[tuple[str, Callable[[], bytes]]] = [
        ("worker png (render.encode)", lambda: render.encode(picture, "png")),
        ("worker jpeg (render.encode)", lambda: render.encode(picture, "jpeg")),
        ("worker webp (render.encode)", lambda: render.encode(picture, "webp")),
    ]
    pillow = [
        ("Pillow PNG default (level 6)", pillow_png(picture)),
        ("Pillow PNG level 1 + Z_RLE", pillow_png(picture, compress_level=1, compress_type=3)),
        ("Pillow PNG level 1", pillow_png(picture, compress_level=1)),
        ("Pillow PNG level 0 (stored)", pillow_png(picture, compress_level=0)),
    ]
    ffmpeg = [
        (
            f"FFmpeg PNG pred={pred} level={'default' if level is None else level}",
            ffmpeg_png(picture, pred, level),
        )
        for pred in ("none", "up", "paeth", "mixed")
        for level in (0, 1, None)
    ]
    return worker + pillow + ffmpeg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encode", description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--at", type=float, default=300.0, help="seconds (default 300: 50%% of 10 min)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    decode_ms, frame = best_ms(_decode(args.video, args.at), args.repeats)
    assert isinstance(frame, av.VideoFrame)
    convert_ms, picture = best_ms(lambda: colour.to_srgb_image(frame), args.repeats)
    assert isinstance(picture, Image.Image)
    print(f"{frame.width}x{frame.height} {frame.format.name} at {args.at:g} s of {args.video.name}")
    print(f"{'decode (keyframe, one thread)':45s} {decode_ms:7.1f} ms")
    print(f"{'convert to RGB (colour.to_srgb_image)':45s} {convert_ms:7.1f} ms")
    for name, encode in settings(picture):
        ms, body = best_ms(encode, args.repeats)
        assert isinstance(body, bytes)
        lossless = ""
        if body.startswith(b"\x89PNG"):
            decoded = Image.open(io.BytesIO(body)).convert("RGB")
            lossless = " lossless" if decoded.tobytes() == picture.tobytes() else " PIXELS DIFFER"
        print(f"{name:45s} {ms:7.1f} ms {len(body) / 1e6:6.2f} MB{lossless}")
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
