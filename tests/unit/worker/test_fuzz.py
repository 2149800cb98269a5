"""Damaged and hostile videos (issue 16): seeded mutations of the corpus and of synthetic clips.

Each case runs the CLI in its own process under a wall clock and an address-space limit; the
outcome must be exit 0 with images of the sizes the manifest lists, or exit 3 with a reason:
never exit 1, a signal, a hang, or a peak RSS over 1 GB. `make fuzz N=2000 SEED=1` runs more and
keeps reproducers. Below, every failure class the fuzzer found, rebuilt from its mutation.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.fuzzing import mutations
from tests.fuzzing.harness import make_cases, run_all, run_case, summary
from tests.fuzzing.mutations import Case
from tests.fuzzing.sources import SUITE_MAX_BYTES, corpus_sources, synthetic_sources

pytestmark = pytest.mark.fuzz

SUITE_SEED = 16  # issue 16; `make fuzz SEED=...` explores others
SUITE_CASES = 200


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return synthetic_sources(tmp_path_factory.mktemp("fuzz-sources"))


def test_seeded_mutations_never_crash_hang_or_exceed_memory(
    sources: dict[str, bytes], tmp_path: Path
) -> None:
    """Synthetic clips always; the corpus's files under 1 MB when it is present beside the clone."""
    everything = {**sources, **corpus_sources(SUITE_MAX_BYTES)}
    outcomes = run_all(make_cases(everything, SUITE_CASES, SUITE_SEED), tmp_path, workers=2)
    failed = [
        f"seed {o.case.seed} ({o.case.source}: {o.case.description}): {o.problem}"
        for o in outcomes
        if o.problem
    ]
    assert not failed, f"{summary(outcomes)}\n" + "\n".join(failed)
    assert sum(o.exit_code == 0 for o in outcomes) > SUITE_CASES // 10  # the mutations leave many usable


def _outcome(
    data: bytes, tmp_path: Path, source: str = "synthetic", seed: int = 0
) -> tuple[int | None, dict]:
    outcome = run_case(Case(source, seed, "regression", data), tmp_path)
    assert outcome.problem is None, outcome.problem
    manifest = json.loads((tmp_path / "out" / "input.mp4.json").read_text())
    return outcome.exit_code, manifest


def _set_box_field(data: bytes, kind: bytes, at: int, fmt: str, value: int) -> bytes:
    box = next(b for b in mutations.boxes(data) if b.kind == kind)
    out = bytearray(data)
    struct.pack_into(fmt, out, box.offset + at if at >= 0 else box.end + at, value)
    return bytes(out)


@pytest.mark.parametrize(("h_spacing", "v_spacing"), [(65535, 1), (175038832, 3), (1, 65535)])
def test_an_absurd_pixel_aspect_ratio_is_refused_not_allocated(
    sources: dict[str, bytes], tmp_path: Path, h_spacing: int, v_spacing: int
) -> None:
    """Was: gigabytes in geometry.to_display, OverflowError, OSError from the encoder (exit 1)."""
    data = mutations.with_pasp(sources["synthetic-moov-end.mp4"], h_spacing, v_spacing)
    code, manifest = _outcome(data, tmp_path)
    assert code == 3 and manifest["error"]["reason"] == "limits_exceeded"
    assert (
        "pixel aspect ratio" in manifest["error"]["message"] and "1/16 to 16" in manifest["error"]["message"]
    )


def test_a_track_header_of_height_1_is_refused(sources: dict[str, bytes], tmp_path: Path) -> None:
    """FFmpeg derives a pixel aspect ratio from tkhd's size beside a display matrix: was 4 GB RSS."""
    data = _set_box_field(sources["synthetic-rotated.mp4"], b"tkhd", -4, ">I", 1 << 16)
    code, manifest = _outcome(data, tmp_path)
    assert code == 3 and manifest["error"]["reason"] == "limits_exceeded"
    assert "pixel aspect ratio 108:1" in manifest["error"]["message"]


@pytest.mark.parametrize("kind", [b"stsd", b"avc1", b"minf"])
def test_a_deleted_sample_description_is_exit_3(
    sources: dict[str, bytes], tmp_path: Path, kind: bytes
) -> None:
    """Was: AttributeError on a stream without a codec context (exit 1)."""
    data = sources["synthetic-faststart.mp4"]
    box = next(b for b in mutations.boxes(data) if b.kind == kind)
    code, manifest = _outcome(mutations.splice(data, box.offset, box.size, b"", box.parents), tmp_path)
    assert code == 3 and manifest["error"]["reason"] in {
        "unsupported_codec",
        "no_decodable_frames",
        "no_video_stream",
    }


def test_a_claimed_sample_count_over_the_limit_is_refused_before_parsing(
    sources: dict[str, bytes], tmp_path: Path
) -> None:
    """A constant sample size (stsz) and 500 million samples: 12 GB of index for a 20-byte edit."""
    data = _set_box_field(sources["synthetic-moov-end.mp4"], b"stsz", 12, ">I", 1000)  # constant size
    data = _set_box_field(data, b"stsz", 16, ">I", 500_000_000)
    code, manifest = _outcome(data, tmp_path)
    assert code == 3 and manifest["error"]["reason"] == "limits_exceeded"
    assert "500000000 samples" in manifest["error"]["message"]


def test_an_empty_file_is_exit_3_empty_file(tmp_path: Path) -> None:
    """Was: OSError at the first seek (exit 1)."""
    code, manifest = _outcome(b"", tmp_path)
    assert code == 3 and manifest["error"]["reason"] == "empty_file"
    assert "empty file" in manifest["error"]["message"]


def test_a_video_of_8k_passes_within_the_memory_budget(tmp_path: Path) -> None:
    """7680x4320 is a valid input: a thumbnail at full size, the job's peak RSS under 1 GB."""
    from tests.unit.worker import synthetic

    clip = synthetic.make_clip(tmp_path / "8k.mp4", frames=2, width=7680, height=4320, gop=2, bframes=0)
    outcome = run_case(Case("8k", 3, "none", clip.path.read_bytes()), tmp_path / "run")
    assert outcome.exit_code == 0 and outcome.problem is None, outcome.problem
    assert outcome.peak_rss < 1_000_000_000
    manifest = json.loads((tmp_path / "run" / "out" / "input.mp4.json").read_text())
    for thumbnail in manifest["thumbnails"]:
        assert thumbnail["width"] <= 7680
        assert abs(thumbnail["height"] - round(thumbnail["width"] * 4320 / 7680)) <= 1


def test_a_picture_wider_than_8192_is_refused(tmp_path: Path) -> None:
    from tests.unit.worker import synthetic

    clip = synthetic.make_clip(tmp_path / "wide.mp4", frames=1, width=8208, height=16, gop=1, bframes=0)
    code, manifest = _outcome(clip.path.read_bytes(), tmp_path / "run")
    assert code == 3 and manifest["error"]["reason"] == "limits_exceeded"
    assert (
        "8208x16" in manifest["error"]["message"] and "8192 pixels per side" in manifest["error"]["message"]
    )


@pytest.mark.media
def test_a_box_sending_the_demuxer_before_the_start_is_exit_3(media_dir: Path, tmp_path: Path) -> None:
    """Was: OSError EINVAL from the file's seek inside av.open (exit 1). make fuzz N=2000 SEED=1."""
    name = "androidx__portrait_4k60.mp4"
    case = mutations.mutate(name, (media_dir / name).read_bytes(), seed=1000971)
    assert case.description == "bit_flips: bit flips at [2494331, 2493673, 2494142]"
    code, manifest = _outcome(case.data, tmp_path, name, case.seed)
    assert code == 3 and manifest["error"]["reason"] == "corrupt"
