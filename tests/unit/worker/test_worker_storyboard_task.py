"""The task writes storyboard, stills and preview to the bucket when the metadata or the stack
defaults ask for them, over real HTTP to moto; a storyboard of a 100 MB video reads its keyframes,
not the file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import av
import pytest

from devkit.environment import overlaid_environment
from local_stack.emulator import Emulator
from tests.unit.worker.storyboard_checks import tiles
from tests.unit.worker.synthetic import Clip, make_clip, read_barcode
from thumbnailer import aws, task
from thumbnailer.__main__ import main as cli_main

KEY = "videos/dir/board clip+1.mp4"
STEM = "thumbnails/dir/board clip+1.mp4"


def _run_task(s3: Any, bucket: str, clip: Clip, metadata: dict[str, str], **settings: str) -> dict[str, Any]:
    put = s3.put_object(Bucket=bucket, Key=KEY, Body=clip.path.read_bytes(), Metadata=metadata)
    job = {"bucket": bucket, "key": KEY, "version_id": put.get("VersionId"), "etag": put["ETag"].strip('"')}
    env = {
        "THUMBNAIL_JOB": json.dumps(job),
        "VIDEO_PREFIX": "videos/",
        "OUTPUT_PREFIX": "thumbnails/",
        **settings,
    }
    assert task.main(env) == 0
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{STEM}.json")["Body"].read())


def test_task_writes_every_extra_output_on_request(s3: Any, bucket: str, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=300, fps=10, gop=20)
    metadata = {"thumbnail-storyboard": "on", "thumbnail-count": "3", "thumbnail-preview": "gif,duration=1"}
    manifest = _run_task(s3, bucket, clip, metadata, THUMBNAIL_AT="0")
    keys = {entry["kind"]: entry["name"] for entry in manifest["thumbnails"]}
    assert keys["storyboard"] == f"{STEM}.storyboard.jpg" and keys["preview"] == f"{STEM}.preview.gif"
    assert keys["storyboard_vtt"] == f"{STEM}.storyboard.vtt" and keys["still"] == f"{STEM}.still-03.jpg"
    for entry in manifest["thumbnails"]:
        head = s3.head_object(Bucket=bucket, Key=entry["name"])
        assert head["ContentType"] == entry["content_type"] and head["ContentLength"] == entry["bytes"]
        assert head["Metadata"]["source-key"] and head["CacheControl"].startswith("public")
        target = tmp_path / "out" / entry["name"].rsplit("/", 1)[-1]
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=entry["name"])["Body"].read())
    for cue, tile in tiles(tmp_path / "out", "board clip+1.mp4.storyboard.vtt"):
        assert read_barcode(tile, coded_width=clip.width) == clip.expected_index(cue.start)
    assert manifest["io"]["bytes_read"] <= manifest["io"]["object_size"]


def test_stack_defaults_ask_for_them_and_metadata_turns_them_off(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=30, fps=10, gop=10)
    defaults = {"THUMBNAIL_STORYBOARD": "webp", "THUMBNAIL_COUNT": "2", "THUMBNAIL_PREVIEW": "on"}
    manifest = _run_task(s3, bucket, clip, {}, THUMBNAIL_AT="0", **defaults)
    assert sorted({e["kind"] for e in manifest["thumbnails"]}) == sorted(
        ["thumbnail", "still", "storyboard", "storyboard_vtt", "storyboard_json", "preview"]
    )
    off = {"thumbnail-storyboard": "off", "thumbnail-count": "0", "thumbnail-preview": "off"}
    manifest = _run_task(s3, bucket, clip, off, THUMBNAIL_AT="0", **defaults)
    assert [e["kind"] for e in manifest["thumbnails"]] == ["thumbnail"]


def test_bad_extra_metadata_fails_with_exit_2_naming_it(s3: Any, bucket: str, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=10, fps=10, gop=10)
    put = s3.put_object(
        Bucket=bucket, Key=KEY, Body=clip.path.read_bytes(), Metadata={"thumbnail-count": "lots"}
    )
    job = {"bucket": bucket, "key": KEY, "version_id": put.get("VersionId"), "etag": put["ETag"].strip('"')}
    env = {"THUMBNAIL_JOB": json.dumps(job), "VIDEO_PREFIX": "videos/", "OUTPUT_PREFIX": "thumbnails/"}
    assert task.main(env) == 2
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{STEM}.json")["Body"].read())
    assert manifest["status"] == "error" and "metadata thumbnail-count" in manifest["error"]["message"]


def test_a_storyboard_of_a_100_mb_video_reads_its_keyframes_not_the_file(
    worker_emulator: Emulator, big_videos: dict[str, Path], tmp_path: Path
) -> None:
    """196 s, a keyframe every second: 50 tiles 3.92 s apart, each on a keyframe decoded alone."""
    path = big_videos["end"]
    name = f"board-{uuid.uuid4().hex[:12]}"
    with overlaid_environment(worker_emulator.environment):
        aws.s3_client.cache_clear()
        s3 = worker_emulator.client("s3")
        s3.create_bucket(Bucket=name)
        with path.open("rb") as file:
            s3.upload_fileobj(file, name, "videos/big.mp4")
        try:
            flags = ["--at", "0", "--storyboard", "--out", str(tmp_path)]
            assert cli_main([f"s3://{name}/videos/big.mp4", *flags]) == 0
        finally:
            s3.delete_object(Bucket=name, Key="videos/big.mp4")
            aws.s3_client.cache_clear()
    manifest = json.loads((tmp_path / "big.mp4.json").read_text())
    document = json.loads((tmp_path / "big.mp4.storyboard.json").read_text())
    assert len(document["tiles"]) == 50 and all(tile["keyframe"] for tile in document["tiles"])
    with av.open(str(path)) as container:
        keyframes = sum(e.size for e in container.streams.video[0].index_entries if e.is_keyframe)
    # Keyframes every second: the 50 used are about a quarter of them (196).
    used = keyframes * 50 / 196
    read = manifest["io"]["bytes_read"]
    assert read < 0.3 * manifest["io"]["object_size"], (read, manifest["io"])
    assert read < 3 * used + 8 * 2**20, (read, used)


@pytest.fixture
def s3(task_s3: Any) -> Any:
    return task_s3


@pytest.fixture
def bucket(task_bucket: str) -> str:
    return task_bucket
