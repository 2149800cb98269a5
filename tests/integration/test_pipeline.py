"""Upload to thumbnail through the real template, launcher and worker (local stack or deployed)."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from integration_support import LocalPipeline, Pipeline, Produced

# S3 keys as users write them: spaces, unicode and `+` in nested folders, both extension spellings.
AWKWARD_KEYS = {
    "videos/nested/deeper folder/été + plus.mp4": "1.2",
    "videos/a+b/c d/ü+x.MP4": "0.7",
    "videos/日本語/クリップ 01.mp4": "1.5",
}


@pytest.fixture(scope="module")
def frames(tiny_video: Path) -> list[tuple[float, np.ndarray]]:
    """Every frame of the tiny video with its time, decoded here with PyAV."""
    with av.open(str(tiny_video)) as container:
        return [
            (float(frame.time), np.asarray(frame.to_image().convert("RGB"), dtype=np.int16))
            for frame in container.decode(video=0)
        ]


def expected_frame(frames: list[tuple[float, np.ndarray]], at: float) -> int:
    """The last frame shown at or before `at`."""
    return max(i for i, (time, _) in enumerate(frames) if time <= at + 1e-6)


def closest_frame(frames: list[tuple[float, np.ndarray]], picture: Image.Image) -> int:
    pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
    return int(np.argmin([np.abs(pixels - frame).mean() for _, frame in frames]))


def decoded(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def assert_not_uniform(picture: Image.Image) -> None:
    assert np.asarray(picture.convert("L"), dtype=np.float32).std() > 10, "the thumbnail is a flat picture"


def test_awkward_keys_get_the_requested_frame(pipeline: Pipeline, tiny_video: Path, frames: list) -> None:
    body = tiny_video.read_bytes()
    for key, at in AWKWARD_KEYS.items():
        pipeline.upload(body, key, {"thumbnail-at": at})
    for key, at in AWKWARD_KEYS.items():
        produced = pipeline.wait_for(key)
        assert produced.exit_codes == (0,), key
        manifest = produced.manifest
        assert manifest["status"] == "ok"
        assert manifest["input"]["key"] == key  # URL-decoded once, exactly
        assert produced.manifest_key == "thumbnails/" + key.removeprefix("videos/") + ".json"
        [(name, data)] = produced.thumbnails.items()
        assert name.startswith(produced.manifest_key.removesuffix("json"))
        picture = decoded(data)
        assert picture.format == "JPEG" and picture.size == (160, 120)
        assert_not_uniform(picture)
        wanted = expected_frame(frames, float(at))
        assert manifest["frame"]["time"] == pytest.approx(frames[wanted][0], abs=1e-3)
        assert closest_frame(frames, picture) == wanted, f"{key}: not the frame at {at} s"


def test_metadata_chooses_format_and_widths(pipeline: Pipeline, tiny_video: Path, frames: list) -> None:
    key = "videos/metadata/two widths.mp4"
    pipeline.upload(tiny_video.read_bytes(), key, {"thumbnail-format": "png", "thumbnail-widths": "80,40"})
    produced = pipeline.wait_for(key)
    assert produced.exit_codes == (0,)
    assert produced.manifest["options"]["format"] == "png"
    sizes = {}
    for name, data in produced.thumbnails.items():
        picture = decoded(data)
        assert picture.format == "PNG"
        assert_not_uniform(picture)
        sizes[name] = picture.size
    stem = produced.manifest_key.removesuffix("json")
    assert sizes == {f"{stem}80w.png": (80, 60), f"{stem}40w.png": (40, 30)}


def test_keys_outside_the_filters_start_no_task(pipeline: Pipeline, tiny_video: Path) -> None:
    body = tiny_video.read_bytes()
    outside = [
        "incoming/clip.mp4",
        "videos/outside/clip.mov",
        "videos/outside/clip.mp4.part",
        "videos/outside/clip.Mp4",
        "thumbnails/outside/clip.mp4",
    ]
    for key in outside:
        pipeline.upload(body, key)
    inside = "videos/outside/control.mp4"  # proves events flow while the others are ignored
    pipeline.upload(body, inside)
    assert pipeline.wait_for(inside).exit_codes == (0,)
    pipeline.settle()
    for key in outside:
        assert pipeline.exit_codes(key) == (), key
    # Only the control's outputs (and the object uploaded under thumbnails/ itself).
    assert pipeline.objects("thumbnails/outside/") == [
        "thumbnails/outside/clip.mp4",
        "thumbnails/outside/control.mp4.jpg",
        "thumbnails/outside/control.mp4.json",
    ]


def test_unusable_video_gets_an_error_manifest_and_exit_3(pipeline: Pipeline) -> None:
    key = "videos/broken/not a video.mp4"
    pipeline.upload(b"this is not a video\n" * 500, key)
    produced = pipeline.wait_for(key)
    assert produced.exit_codes == (3,)
    assert produced.manifest["status"] == "error"
    assert produced.manifest["error"]["exit_code"] == 3
    assert produced.thumbnails == {}
    if isinstance(pipeline, LocalPipeline):  # the task itself, as ECS reports it
        stack = pipeline.stack
        [outcome] = stack.outcomes_for(key)
        ecs = stack.emulator.client("ecs")
        [task] = ecs.describe_tasks(cluster=stack.outputs["ClusterArn"], tasks=[outcome.task_arn])["tasks"]
        assert task["lastStatus"] == "STOPPED"
        assert task["stoppedReason"].endswith("exit code 3")


def test_a_duplicated_event_starts_one_task(pipeline: Pipeline, tiny_video: Path) -> None:
    if not isinstance(pipeline, LocalPipeline):
        pytest.skip("re-delivering an S3 event needs the local event queue")
    stack = pipeline.stack
    key = "videos/duplicate/twice delivered.mp4"
    pipeline.upload(tiny_video.read_bytes(), key)
    first = pipeline.wait_for(key)
    assert first.exit_codes == (0,)
    [original] = [
        i
        for i in stack.pump.record.invocations
        if i.result and i.result.get("task_arns") and _event_key(i.event) == key
    ]
    # S3 delivers at least once: the same event again, twice, through the queue and the pump.
    sqs = stack.emulator.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=stack.deployed.event_queue_url, MessageBody=json.dumps(original.event))
    pipeline.settle()
    repeats = [i for i in stack.pump.record.invocations if i.event == original.event and i is not original]
    assert len(repeats) == 2
    assert all(i.error is None and i.result["task_arns"] == original.result["task_arns"] for i in repeats)
    assert pipeline.exit_codes(key) == (0,)  # one task ran, once


def test_fifty_uploads_at_once(pipeline: Pipeline, tiny_video: Path) -> None:
    body = tiny_video.read_bytes()
    keys = [f"videos/batch/clip {index:02d}.mp4" for index in range(50)]
    with ThreadPoolExecutor(max_workers=10) as uploads:
        list(uploads.map(lambda key: pipeline.upload(body, key), keys))
    produced: list[Produced] = [pipeline.wait_for(key, timeout_s=300) for key in keys]
    pipeline.settle()
    assert [p.exit_codes for p in produced] == [(0,)] * 50  # nothing lost, nothing twice
    assert all(len(p.thumbnails) == 1 for p in produced)
    written = pipeline.objects("thumbnails/batch/")
    assert len(written) == 100 and len(set(written)) == 100


def _event_key(event: object) -> str | None:
    from urllib.parse import unquote_plus

    records = event.get("Records", []) if isinstance(event, dict) else []
    return unquote_plus(records[0]["s3"]["object"]["key"]) if records else None


def test_the_emulator_holds_the_stack_as_the_template_declares(pipeline: Pipeline) -> None:
    """What moto dropped was re-applied from template.yaml, and the launcher sees it."""
    if not isinstance(pipeline, LocalPipeline):
        pytest.skip("checks the local deployment's repairs")
    from local_stack import template
    from local_stack.deploy import TEMPLATE_PATH
    from thumbnail_launcher.settings import environment_variables

    stack = pipeline.stack
    declared = template.load_template(TEMPLATE_PATH)["Resources"]
    ecs, s3 = stack.emulator.client("ecs"), stack.emulator.client("s3")
    function_env = stack.deployed.function.environment
    # Every variable the launcher reads, exactly as the stack resolved them, naming live resources.
    assert set(function_env) == environment_variables()
    definition = ecs.describe_task_definition(taskDefinition=function_env["TASK_DEFINITION_ARN"])[
        "taskDefinition"
    ]
    assert definition["status"] == "ACTIVE"
    assert function_env["TASK_DEFINITION_ARN"] == stack.outputs["TaskDefinitionArn"]
    task_properties = declared["WorkerTaskDefinition"]["Properties"]
    assert definition["networkMode"] == task_properties["NetworkMode"]
    assert definition["requiresCompatibilities"] == task_properties["RequiresCompatibilities"]
    assert definition["cpu"] == "1024" and definition["taskRoleArn"] and definition["executionRoleArn"]
    assert [c["name"] for c in definition["containerDefinitions"]] == [function_env["CONTAINER_NAME"]]
    # The bucket notifies with the template's own filters.
    notifications = s3.get_bucket_notification_configuration(Bucket=stack.bucket)["QueueConfigurations"]
    declared_rules = sorted(
        tuple((r["Name"], r["Value"]) for r in event["Properties"]["Filter"]["S3Key"]["Rules"])
        for event in declared["LauncherFunction"]["Properties"]["Events"].values()
    )
    assert (
        sorted(
            tuple((r["Name"], r["Value"]) for r in n["Filter"]["Key"]["FilterRules"]) for n in notifications
        )
        == declared_rules
    )
    vpc_id = stack.emulator.client("ec2").describe_subnets(SubnetIds=function_env["SUBNET_IDS"].split(","))
    [vpc] = {subnet["VpcId"] for subnet in vpc_id["Subnets"]}
    hostnames = stack.emulator.client("ec2").describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")
    assert hostnames["EnableDnsHostnames"]["Value"] is True


def test_an_event_the_launcher_rejects_ends_in_the_dead_letter_queue(pipeline: Pipeline) -> None:
    """Lambda's async retries, then the template's OnFailure destination, with the error."""
    if not isinstance(pipeline, LocalPipeline):
        pytest.skip("sending a malformed event needs the local event queue")
    stack = pipeline.stack
    sqs = stack.emulator.client("sqs")
    malformed = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}
    sqs.send_message(QueueUrl=stack.deployed.event_queue_url, MessageBody=json.dumps(malformed))
    dead_letter_url = sqs.get_queue_url(QueueName=stack.outputs["DeadLetterQueueUrl"].rsplit("/", 1)[-1])
    received: list[dict] = []
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=dead_letter_url["QueueUrl"], WaitTimeSeconds=1)
        received = answer.get("Messages", [])
    [message] = received
    record = json.loads(message["Body"])
    assert record["requestPayload"] == malformed
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    attempts = [i for i in stack.pump.record.invocations if i.event == malformed]
    assert [i.attempt for i in attempts] == [1, 2, 3]  # EventInvokeConfig MaximumRetryAttempts: 2
    assert all(i.error for i in attempts)
