"""What one job may ask for, checked before the allocation it would cost (README "Limits").

A few bytes of a header can claim a picture of gigapixels, a pixel aspect ratio of 65535:1 or
billions of samples; each is refused with LimitExceededError (exit 3) naming the value and the
limit. The limits keep a job's peak resident set under MEMORY_BUDGET_BYTES.
"""

from __future__ import annotations

from fractions import Fraction

from thumbnailer.errors import LimitExceededError

__all__ = ["LimitExceededError"]

MEMORY_BUDGET_BYTES = 1_000_000_000  # peak RSS of one job, whatever the input
# Decoded picture: 8192 per side and HEVC level 6's maximum luma picture size (8192x4352):
# every 8K format (7680x4320, 8192x4320, portrait) fits, an 8-bit RGB copy is at most 107 MB.
MAX_DECODED_SIDE = 8192
MAX_DECODED_PIXELS = 35_651_584
# Displayed picture (after the pixel aspect ratio and rotation) and every output: WebP's largest
# side, and room for anamorphic 8K (a 4:3 pixel aspect ratio stretches 7680 to 10240).
MAX_DISPLAY_SIDE = 16383
MAX_DISPLAY_PIXELS = 48_000_000
MIN_PIXEL_ASPECT, MAX_PIXEL_ASPECT = Fraction(1, 16), Fraction(16)
# The moov box is read whole by the demuxer, its tables expanded per sample (~40 bytes each):
# 256 MB of moov and 4 million samples in all tracks (37 h at 30 fps) are far beyond real files.
MAX_MOOV_BYTES = 256 << 20
MAX_SAMPLES = 4_000_000
# Frames decoded forward from a keyframe to reach one target (one seek): 10 minutes at 30 fps.
MAX_DECODED_FRAMES_PER_SEEK = 18_000
# Decoded frames the frame-threaded decoder may hold at once are bounded by this many bytes.
DECODER_FRAMES_BUDGET_BYTES = 400_000_000


def check_decoded_size(width: int, height: int) -> None:
    _check_size("decoded picture", width, height, MAX_DECODED_SIDE, MAX_DECODED_PIXELS)


def check_display_size(width: int, height: int, what: str = "displayed picture") -> None:
    _check_size(what, width, height, MAX_DISPLAY_SIDE, MAX_DISPLAY_PIXELS)


def _check_size(what: str, width: int, height: int, max_side: int, max_pixels: int) -> None:
    if max(width, height) > max_side:
        raise LimitExceededError(f"the {what} is {width}x{height}: more than {max_side} pixels per side")
    if width * height > max_pixels:
        raise LimitExceededError(
            f"the {what} is {width}x{height} ({width * height} pixels): more than {max_pixels} pixels"
        )


def check_pixel_aspect(sar: Fraction) -> None:
    if not MIN_PIXEL_ASPECT <= sar <= MAX_PIXEL_ASPECT:
        raise LimitExceededError(
            f"the pixel aspect ratio {sar.numerator}:{sar.denominator} is outside "
            f"{MIN_PIXEL_ASPECT} to {MAX_PIXEL_ASPECT}"
        )


def check_moov(size: int) -> None:
    if size > MAX_MOOV_BYTES:
        raise LimitExceededError(f"the moov box is {size} bytes: more than {MAX_MOOV_BYTES}")


def check_samples(count: int) -> None:
    if count > MAX_SAMPLES:
        raise LimitExceededError(f"the sample tables list {count} samples: more than {MAX_SAMPLES}")


def check_decoded_frames(count: int) -> None:
    if count > MAX_DECODED_FRAMES_PER_SEEK:
        raise LimitExceededError(
            f"reaching the frame needs more than {MAX_DECODED_FRAMES_PER_SEEK} frames decoded from a keyframe"
        )


def decoder_threads(width: int, height: int, cores: int) -> int | None:
    """Threads for the decoder so its frames in flight (threads + 2) fit the budget; None: FFmpeg's choice."""
    frame_bytes = width * height * 3  # up to 16-bit 4:2:0 (1.5 samples per pixel, 2 bytes each)
    if frame_bytes * (cores + 2) <= DECODER_FRAMES_BUDGET_BYTES:
        return None
    return max(1, DECODER_FRAMES_BUDGET_BYTES // frame_bytes - 2)
