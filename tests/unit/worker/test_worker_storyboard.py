"""Storyboard, stills and animated preview (issue 13) on clips whose pixels say which frame they are.

Every tile is checked against its cue (the frame a player shows at the cue's start), every still
against its time and every preview frame against start + k / fps, by reading the frame number
drawn in the picture.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.unit.worker.storyboard_checks import animation_frames, check_contiguous, tiles, undisplay
from tests.unit.worker.synthetic import Clip, make_clip, read_barcode
from thumbnailer import storyboard
from thumbnailer.__main__ import main as cli_main
from thumbnailer.errors import InvalidOptionsError
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options, from_environment, with_metadata
from thumbnailer.output_options import (
    PreviewSpec,
    StoryboardSpec,
    parse_count,
    parse_preview,
    parse_storyboard,
)


@pytest.fixture(scope="module")
def minute_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """60 s at 10 fps, a keyframe every 2 s, B-frames: 50 tiles 1.2 s apart, some on keyframes."""
    return make_clip(tmp_path_factory.mktemp("minute") / "minute.mp4", frames=600, fps=10, gop=20)


def _run(clip: Clip, out: Path, *flags: str) -> dict[str, Any]:
    assert cli_main([str(clip.path), "--out", str(out), "--at", "0", *flags]) == 0
    return json.loads((out / f"{clip.path.name}.json").read_text())


def _by_kind(manifest: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in manifest["thumbnails"] if entry["kind"] == kind]


def _check_storyboard(clip: Clip, out: Path, manifest: dict[str, Any], read: Any = None) -> int:
    """Every tile shows the frame shown at its cue's start; returns the number of tiles."""
    name = clip.path.name
    (sprite,) = _by_kind(manifest, "storyboard")
    (vtt,) = _by_kind(manifest, "storyboard_vtt")
    (mapping,) = _by_kind(manifest, "storyboard_json")
    assert Path(sprite["name"]).name == f"{name}.storyboard.jpg"
    assert Path(vtt["name"]).name == f"{name}.storyboard.vtt" and vtt["content_type"].startswith("text/vtt")
    found = tiles(out, f"{name}.storyboard.vtt")
    check_contiguous([cue for cue, _ in found], manifest["source"]["duration"])
    for cue, tile in found:
        assert tile.size == (sprite["tile_width"], sprite["tile_height"])
        shown = read(tile) if read else read_barcode(tile, coded_width=clip.width)
        assert shown == clip.expected_index(cue.start), (cue, shown)
    document = json.loads((out / f"{name}.storyboard.json").read_text())
    assert document["url"] == found[0][0].sprite and len(document["tiles"]) == len(found)
    assert [t["start"] for t in document["tiles"]] == [cue.start for cue, _ in found]
    assert sprite["tiles"] == mapping["tiles"] == vtt["tiles"] == len(found)
    assert sprite["columns"] * sprite["rows"] >= len(found)
    return len(found)


def test_storyboard_tiles_show_their_cue_frames(minute_clip: Clip, tmp_path: Path) -> None:
    manifest = _run(minute_clip, tmp_path, "--storyboard")
    assert _check_storyboard(minute_clip, tmp_path, manifest) == 50
    (sprite,) = _by_kind(manifest, "storyboard")
    assert (sprite["tile_width"], sprite["tile_height"]) == (160, 90) and sprite["interval"] == 1.2
    # About half the even times have a keyframe within half an interval (a keyframe every 2 s).
    assert 10 <= sprite["keyframe_tiles"] < 50
    document = json.loads((tmp_path / "minute.mp4.storyboard.json").read_text())
    assert all(t["frame_time"] * 10 % 20 == 0 for t in document["tiles"] if t["keyframe"])


@pytest.mark.parametrize("clip_name", ["moov_end", "moov_front", "vfr", "black_intro"])
def test_storyboard_on_the_shared_clips(clips: dict[str, Clip], clip_name: str, tmp_path: Path) -> None:
    clip = clips[clip_name]
    manifest = _run(clip, tmp_path, "--storyboard", "webp,width=96")
    name = clip.path.name
    (sprite,) = _by_kind(manifest, "storyboard")
    assert sprite["format"] == "webp" and sprite["tile_width"] == 96
    assert Image.open(tmp_path / f"{name}.storyboard.webp").format == "WEBP"
    found = tiles(tmp_path, f"{name}.storyboard.vtt")
    check_contiguous([cue for cue, _ in found], manifest["source"]["duration"])
    black = 45 if clip_name == "black_intro" else 0  # its first 45 frames are black: they read as 0
    for cue, tile in found:
        expected = clip.expected_index(cue.start)
        assert read_barcode(tile, coded_width=clip.width) == (expected if expected >= black else 0), cue


def test_storyboard_of_a_rotated_anamorphic_clip(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "turned.mp4", frames=80, fps=10, gop=10, rotation=90, sar=Fraction(2, 1))
    manifest = _run(clip, tmp_path / "out", "--storyboard", "--count", "3")
    (sprite,) = _by_kind(manifest, "storyboard")
    # Displayed 384x108 turned a quarter: 108x384, narrower than 160 px tiles.
    assert (sprite["tile_width"], sprite["tile_height"]) == (108, 384)  # never upscaled

    def read(picture: Image.Image) -> int:
        return read_barcode(undisplay(picture, 90, False, (clip.width, clip.height)))

    _check_storyboard(clip, tmp_path / "out", manifest, read)
    for still in _by_kind(manifest, "still"):
        assert read(Image.open(still["name"])) == clip.expected_index(still["time"])


def test_stills_are_exact_frames_at_their_times(minute_clip: Clip, tmp_path: Path) -> None:
    manifest = _run(minute_clip, tmp_path, "--count", "7", "--format", "png")
    stills = _by_kind(manifest, "still")
    assert [Path(s["name"]).name for s in stills] == [f"minute.mp4.still-{i:02d}.png" for i in range(1, 8)]
    assert [s["time"] for s in stills] == pytest.approx([60 * (i + 0.5) / 7 for i in range(7)], abs=1e-3)
    for still in stills:
        assert read_barcode(Image.open(still["name"])) == minute_clip.expected_index(still["time"])
        assert still["frame_time"] == pytest.approx(
            minute_clip.times[minute_clip.expected_index(still["time"])]
        )
    assert manifest["options"]["count"] == 7


def test_stills_on_a_variable_frame_rate_clip(clips: dict[str, Clip], tmp_path: Path) -> None:
    clip = clips["vfr"]
    manifest = _run(clip, tmp_path, "--count", "12", "--width", "96")
    stills = _by_kind(manifest, "still")
    assert len(stills) == 12 and all(s["width"] == 96 for s in stills)
    for still in stills:
        assert read_barcode(Image.open(still["name"]), coded_width=clip.width) == clip.expected_index(
            still["time"]
        )


@pytest.mark.parametrize("fmt", ["webp", "gif"])
def test_preview_frames_are_exact(minute_clip: Clip, tmp_path: Path, fmt: str) -> None:
    manifest = _run(minute_clip, tmp_path, "--preview", f"{fmt},start=12.35,duration=2.5,fps=4")
    (preview,) = _by_kind(manifest, "preview")
    assert Path(preview["name"]).name == f"minute.mp4.preview.{fmt}"
    assert (preview["start"], preview["fps"], preview["frames"]) == (12.35, 4, 10)
    frames = animation_frames(Path(preview["name"]))
    assert len(frames) == 10 and sum(duration for _, duration in frames) == pytest.approx(2500, abs=20)
    for k, (frame, _) in enumerate(frames):
        assert read_barcode(frame) == minute_clip.expected_index(12.35 + k / 4), k


def test_preview_defaults_start_at_the_representative_frame(clips: dict[str, Clip], tmp_path: Path) -> None:
    """3 s at 10 fps from auto's frame, never upscaled past the clip's 192 px."""
    clip = clips["black_intro"]
    assert cli_main([str(clip.path), "--out", str(tmp_path), "--preview"]) == 0
    manifest = json.loads((tmp_path / f"{clip.path.name}.json").read_text())
    (preview,) = _by_kind(manifest, "preview")
    assert preview["start"] == pytest.approx(manifest["frame"]["time"])
    assert preview["format"] == "webp" and preview["fps"] == 10 and preview["width"] == clip.width
    frames = animation_frames(Path(preview["name"]))
    end = min(preview["start"] + 3, clip.times[-1] + 1 / 30)
    assert len(frames) == preview["frames"] == len([k for k in range(30) if preview["start"] + k / 10 < end])
    for k, (frame, _) in enumerate(frames):
        assert read_barcode(frame) == clip.expected_index(preview["start"] + k / 10)


def test_all_outputs_together_and_names_never_collide(minute_clip: Clip, tmp_path: Path) -> None:
    manifest = _run(
        minute_clip, tmp_path, "--storyboard", "--count", "3", "--preview", "gif", "--width", "64"
    )
    kinds = [entry["kind"] for entry in manifest["thumbnails"]]
    assert kinds == [
        "thumbnail",
        "still",
        "still",
        "still",
        "storyboard",
        "storyboard_vtt",
        "storyboard_json",
        "preview",
    ]
    names = [Path(entry["name"]).name for entry in manifest["thumbnails"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "minute.mp4.json"])
    assert all(entry["bytes"] == Path(entry["name"]).stat().st_size for entry in manifest["thumbnails"])
    assert manifest["options"]["storyboard"] == "jpeg,width=160"
    assert manifest["options"]["preview"].startswith("gif,start=auto")


def test_output_names() -> None:
    names = OutputNames.for_key("videos/a/b c.mp4", "videos/", "thumbnails/")
    assert names.storyboard("jpg") == "thumbnails/a/b c.mp4.storyboard.jpg"
    assert names.storyboard_vtt() == "thumbnails/a/b c.mp4.storyboard.vtt"
    assert names.storyboard_json() == "thumbnails/a/b c.mp4.storyboard.json"
    assert names.preview("webp") == "thumbnails/a/b c.mp4.preview.webp"
    assert names.still(1, 9, "jpg") == "thumbnails/a/b c.mp4.still-01.jpg"
    assert names.still(7, 100, "png") == "thumbnails/a/b c.mp4.still-007.png"
    today = {names.thumbnail("jpg"), names.thumbnail("webp", 320), names.manifest()}
    assert not today & {names.storyboard("jpg"), names.preview("webp"), names.still(1, 1, "jpg")}


def test_tile_count_follows_mux() -> None:
    assert len(storyboard.even_times_ms(600)) == 50 and storyboard.interval_seconds(600) == 12
    assert len(storyboard.even_times_ms(2400)) == 100 and storyboard.interval_seconds(2400) == 24
    assert len(storyboard.even_times_ms(899)) == 50 and len(storyboard.even_times_ms(900)) == 100
    assert storyboard.even_times_ms(3.0) == [0, 1000, 2000]  # at least a second apart
    assert storyboard.even_times_ms(0.2) == [0]
    assert storyboard.vtt_time(3_723_004) == "01:02:03.004"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("on", StoryboardSpec()),
        ("JPG", StoryboardSpec()),
        ("webp, width=240", StoryboardSpec("webp", 240)),
        ("width=96", StoryboardSpec("jpeg", 96)),
        ("off", None),
        ("0", None),
    ],
)
def test_storyboard_option(raw: str, expected: StoryboardSpec | None) -> None:
    assert parse_storyboard(raw) == expected


def test_preview_and_count_options() -> None:
    assert parse_preview("on") == PreviewSpec()
    spec = parse_preview("gif,start=00:01:02.5,duration=10,fps=30,width=640")
    assert spec is not None and spec.format == "gif" and spec.start is not None and spec.start.value == 62.5
    assert (spec.duration, spec.fps, spec.width) == (10.0, 30, 640)
    assert parse_preview("webp,start=auto") == PreviewSpec()
    assert parse_preview("no") is None
    assert parse_count("12") == 12 and parse_count(" 0 ") == 0


@pytest.mark.parametrize(
    ("parse", "raw", "message"),
    [
        (parse_storyboard, "png", "jpeg, webp, on or off"),
        (parse_storyboard, "webp,width=20", "from 32 to 320"),
        (parse_storyboard, "webp,height=20", "unknown setting"),
        (parse_storyboard, "off,width=100", "output that is off"),
        (parse_preview, "mp4", "webp, gif, on or off"),
        (parse_preview, "webp,duration=10.5", "at most 10"),
        (parse_preview, "webp,duration=0", "above 0"),
        (parse_preview, "webp,fps=31", "from 1 to 30"),
        (parse_preview, "webp,width=641", "from 16 to 640"),
        (parse_preview, "webp,start=-1", "is not a time"),
        (parse_preview, "webp,fps", "name=value"),
        (parse_count, "101", "from 0 to 100"),
        (parse_count, "-1", "from 0 to 100"),
        (parse_count, "two", "from 0 to 100"),
    ],
)
def test_invalid_values_name_the_option(parse: Any, raw: str, message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message) as caught:
        parse(raw, "option --x")
    assert caught.value.message.startswith("option --x")


def test_layers_environment_then_metadata() -> None:
    defaults = from_environment(
        {"THUMBNAIL_STORYBOARD": "on", "THUMBNAIL_COUNT": "4", "THUMBNAIL_PREVIEW": "off"}
    )
    assert (defaults.storyboard, defaults.count, defaults.preview) == (StoryboardSpec(), 4, None)
    options = with_metadata(
        defaults, {"Thumbnail-Count": "0", "thumbnail-preview": "gif", "thumbnail-at": "2"}
    )
    assert (options.storyboard, options.count, options.preview) == (StoryboardSpec(), 0, PreviewSpec("gif"))
    assert options.at.value == 2.0
    assert Options() == from_environment({})  # off by default: a plain upload costs what it did
    with pytest.raises(InvalidOptionsError, match=r"^metadata thumbnail-count"):
        with_metadata(defaults, {"thumbnail-count": "many"})
    with pytest.raises(InvalidOptionsError, match=r"^setting THUMBNAIL_PREVIEW"):
        from_environment({"THUMBNAIL_PREVIEW": "avi"})


def test_cli_invalid_extra_option_exits_2_and_writes_nothing(clips: dict[str, Clip], tmp_path: Path) -> None:
    out = tmp_path / "out"
    for flags in (["--count", "1000"], ["--storyboard", "gif"], ["--preview", "webp,fps=60"]):
        assert cli_main([str(clips["moov_end"].path), "--out", str(out), *flags]) == 2
    assert not out.exists()
