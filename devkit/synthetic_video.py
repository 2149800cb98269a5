"""Synthetic videos: pictures encoded to H.264 MP4 (with an AAC tone if asked), and long ones by remuxing.

Callers draw the pictures (frame numbers, clocks, textures); this module owns the encoding:
one H.264 stream, optional stereo AAC interleaved with it, moov placement, and the
"encode a segment once, remux N copies with shifted timestamps" technique for long files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 48_000
AUDIO_BIT_RATE = 128_000
AAC_FRAME_SAMPLES = 1024
TONE_HZ = 440


@dataclass(frozen=True)
class H264:
    """The video stream's settings: size, rate, pixel format and libx264 options."""

    width: int
    height: int
    fps: int
    options: Mapping[str, str] = field(default_factory=dict)
    pix_fmt: str = "yuv420p"
    bit_rate: int | None = None
    time_base: Fraction | None = None  # of the codec and the frames' pts; 1/fps when None

    @property
    def frame_time_base(self) -> Fraction:
        return self.time_base or Fraction(1, self.fps)


def encode_mp4(
    path: Path,
    h264: H264,
    frames: Iterable[av.VideoFrame],
    *,
    faststart: bool = False,
    tone_seconds: float | None = None,
    setup: Callable[[av.VideoStream], None] | None = None,
) -> None:
    """Encode `frames` (their pts set by the caller) as one H.264 stream in an MP4 at `path`.

    `faststart`: moov before mdat. `tone_seconds`: a stereo AAC 440 Hz tone that long,
    interleaved with the video as a camera records it. `setup`: anything else the stream
    needs before the first frame (rotation, aspect ratio, colour description).
    """
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = _video_stream(container, h264)
        if setup is not None:
            setup(stream)
        tone = None if tone_seconds is None else _Tone(container, round(tone_seconds * AUDIO_RATE))
        for frame in frames:
            if frame.time_base is None:
                frame.time_base = h264.frame_time_base
            container.mux(stream.encode(frame))
            if tone is not None:
                assert frame.pts is not None
                tone.mux_until((frame.pts + 1) * frame.time_base)
        container.mux(stream.encode(None))
        if tone is not None:
            tone.finish()


def _video_stream(container: av.container.OutputContainer, h264: H264) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=h264.fps)
    stream.width, stream.height, stream.pix_fmt = h264.width, h264.height, h264.pix_fmt
    if h264.time_base is not None:
        stream.codec_context.time_base = h264.time_base
    if h264.bit_rate is not None:
        stream.bit_rate = h264.bit_rate
    stream.options = dict(h264.options)
    return stream


class _Tone:
    """A stereo AAC stream of a 440 Hz tone, muxed in AAC-frame-sized chunks as the video advances."""

    def __init__(self, container: av.container.OutputContainer, total_samples: int) -> None:
        self._container = container
        self._stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self._stream.bit_rate = AUDIO_BIT_RATE
        self._total = total_samples
        self._sample = 0

    def mux_until(self, seconds: Fraction) -> None:
        """Every whole AAC frame up to `seconds`, and the last short one once the tone's end is reached."""
        until = min(self._total, math.floor(seconds * AUDIO_RATE))
        while until - self._sample >= AAC_FRAME_SAMPLES or (until == self._total and self._sample < until):
            count = min(AAC_FRAME_SAMPLES, self._total - self._sample)
            self._container.mux(self._stream.encode(self._chunk(count)))
            self._sample += count

    def finish(self) -> None:
        self.mux_until(Fraction(self._total, AUDIO_RATE))
        self._container.mux(self._stream.encode(None))

    def _chunk(self, count: int) -> av.AudioFrame:
        t = np.arange(self._sample, self._sample + count) / AUDIO_RATE
        tone = (0.2 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
        chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        chunk.sample_rate, chunk.pts, chunk.time_base = AUDIO_RATE, self._sample, Fraction(1, AUDIO_RATE)
        return chunk


@dataclass(frozen=True)
class _StoredPacket:
    stream: int
    kind: str  # "video", "audio"
    payload: bytes
    pts: int | None
    dts: int | None
    duration: int | None
    keyframe: bool
    time_base: Fraction


def remux_repeated(segment: Path, path: Path, *, copies: int, faststart: bool) -> None:
    """`copies` back-to-back copies of the segment's packets (every stream), timestamps shifted per copy.

    Each copy lasts as long as the segment's video. The AAC priming packet (negative pts: samples
    a decoder discards) is kept in the first copy only, and audio that overhangs the video's end
    is dropped, so copies neither overlap nor drift apart.
    """
    packets = _stored_packets(segment)
    span = _video_span(packets)
    options = {"movflags": "+faststart"} if faststart else {}
    tmp = path.with_name(f"{path.stem}.partial{path.suffix}")
    with av.open(str(segment)) as source, av.open(str(tmp), "w", options=options) as output:
        streams = [output.add_stream_from_template(s) for s in source.streams]
        for copy in range(copies):
            for stored in packets:
                if _kept(stored, copy, span):
                    output.mux(
                        _shifted(stored, streams[stored.stream], round(copy * span / stored.time_base))
                    )
    tmp.replace(path)


def copies_to_reach(segment: Path, min_bytes: int) -> int:
    """How many copies of the segment's packets hold at least `min_bytes` of payload."""
    return -(-min_bytes // sum(len(p.payload) for p in _stored_packets(segment)))


def _stored_packets(segment: Path) -> list[_StoredPacket]:
    """Muxing consumes a packet, so keep each one's payload and timing to rebuild it per copy."""
    with av.open(str(segment)) as source:
        return [
            _StoredPacket(
                p.stream.index,
                p.stream.type,
                bytes(p),
                p.pts,
                p.dts,
                p.duration,
                p.is_keyframe,
                Fraction(p.time_base.numerator, p.time_base.denominator),
            )
            for p in source.demux()
            if p.size
        ]


def _video_span(packets: list[_StoredPacket]) -> Fraction:
    """The segment's length: the end of its last video frame, in seconds."""
    video = [p for p in packets if p.kind == "video"]
    if not video[0].keyframe:
        raise ValueError("the segment must start with a video keyframe")
    return max((p.pts + (p.duration or 0)) * p.time_base for p in video if p.pts is not None)


def _kept(stored: _StoredPacket, copy: int, span: Fraction) -> bool:
    if stored.pts is None:
        return True
    if copy > 0 and stored.pts < 0:
        return False  # priming: it would overlap the previous copy's end
    return stored.pts * stored.time_base < span  # overhang past the video's end


def _shifted(stored: _StoredPacket, stream: av.stream.Stream, shift: int) -> av.Packet[av.stream.Stream]:
    packet = av.Packet(stored.payload)
    packet.stream, packet.time_base = stream, stored.time_base
    packet.pts = None if stored.pts is None else stored.pts + shift
    packet.dts = None if stored.dts is None else stored.dts + shift
    packet.duration, packet.is_keyframe = stored.duration, stored.keyframe
    return packet
