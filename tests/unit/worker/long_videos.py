"""Long test videos made cheaply: a short segment encoded once, its packets remuxed again and again.

Encoding 100 MB would take minutes; remuxing takes a second or two. The timestamps are shifted
per repeat, so the result is a valid MP4 whose index, keyframes and interleaving look like a
real long recording's.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 25
AUDIO_RATE = 48_000


def encode_segment(
    path: Path,
    *,
    frames: int,
    width: int,
    height: int,
    noise: bool,
    faststart: bool,
    bframes: int = 0,
    audio: bool = False,
) -> None:
    """H.264 MP4, 25 fps, a keyframe every second; each frame visibly distinct.

    noise: a lossless grain background (big keyframes; with B-frames, still inter frames that
    only code a moving bar, as in real footage: a large keyframe and small frames after it).
    audio: an interleaved AAC stereo track, as a real recording has.
    """
    options = {"movflags": "+faststart"} if faststart else {}
    rng = np.random.default_rng(7)
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if noise else None
    with av.open(str(path), "w", options=options) as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "g": str(FPS),
            "keyint_min": str(FPS),
            "sc_threshold": "0",
            "preset": "ultrafast" if not bframes else "veryfast",
            "bf": str(bframes),
            "x264-params": "b-adapt=0",  # B-frames even where x264 would not choose them
            **({"crf": "0" if not bframes else "4"} if noise else {}),  # x264 has no B-frames when lossless
        }
        sound = output.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if audio else None
        for index in range(frames):
            if background is not None and bframes:
                image = background.copy()
                image[:, index * 5 % (width - 8) :][:, :8] = 255  # a moving bar over still grain
            elif background is not None:
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            else:
                image = np.zeros((height, width, 3), np.uint8)
                image[:, :, 0] = index * 9 % 256
                image[:, index * 3 % width, 1] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
        if sound is not None:
            _encode_tone(output, sound, seconds=frames / FPS)


def _encode_tone(output: av.container.OutputContainer, sound: av.AudioStream, seconds: float) -> None:
    samples = int(seconds * AUDIO_RATE)
    t = np.arange(samples) / AUDIO_RATE
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = np.ascontiguousarray(np.stack([tone[start : start + 1024]] * 2))
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        frame.time_base = Fraction(1, AUDIO_RATE)
        output.mux(sound.encode(frame))
    output.mux(sound.encode())


def repeat_to_size(segment: Path, path: Path, *, min_bytes: int, faststart: bool) -> None:
    """The segment's packets (every stream) remuxed until the file holds min_bytes, timestamps shifted."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(segment)) as source:
        packets = [
            (p.stream.index, bytes(p), p.pts, p.dts, p.duration, p.is_keyframe)
            for p in source.demux()
            if p.size
        ]
        first_video = next(p for p in packets if p[0] == source.streams.video[0].index)
        assert first_video[5], "the segment must start with a keyframe"
        # Every stream's span in seconds must agree, or the tracks drift apart over the repeats.
        seconds = max(
            float((p[2] + p[4]) * source.streams[p[0]].time_base) for p in packets if p[2] is not None
        )
        repeats = -(-min_bytes // sum(len(p[1]) for p in packets))
        with av.open(str(path), "w", options=options) as output:
            outputs = {s.index: output.add_stream_from_template(s) for s in source.streams}
            last_dts: dict[int, int] = {}
            for repeat in range(repeats):
                for index, data, pts, dts, duration, keyframe in packets:
                    time_base = source.streams[index].time_base
                    shift = round(repeat * seconds / time_base)
                    if dts is not None and dts + shift <= last_dts.get(index, -(2**62)):
                        continue  # AAC priming overlapping the previous repeat's end
                    last_dts[index] = last_dts.get(index, 0) if dts is None else dts + shift
                    packet = av.Packet(data)
                    packet.pts = None if pts is None else pts + shift
                    packet.dts = None if dts is None else dts + shift
                    packet.duration, packet.is_keyframe = duration, keyframe
                    packet.time_base, packet.stream = time_base, outputs[index]
                    output.mux(packet)


def moov_first(path: Path) -> bool:
    """Whether the moov atom precedes mdat (top-level atoms walked from the file's start)."""
    with path.open("rb") as file:
        while header := file.read(8):
            size, kind = int.from_bytes(header[:4]), header[4:]
            if kind in {b"moov", b"mdat"}:
                return kind == b"moov"
            file.seek(size - 8 if size != 1 else int.from_bytes(file.read(8)) - 16, io.SEEK_CUR)
    raise AssertionError(f"no moov or mdat in {path}")
