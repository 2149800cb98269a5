"""The sweep and the replay (`python -m ops`) against a local stack, over real HTTP to its emulator."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.environment import overlaid_environment
from local_stack.stack import LocalStack
from ops.__main__ import main as ops

STRAY = "videos/ops/missed-notification.mp4"
# moto keeps one state per process: each module's stack has its own name.
OPS_STACK = "thumbnail-creator-ops"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    if os.environ.get("AWS_SAM_STACK_NAME"):
        pytest.skip("these tests drive the local stack's emulator directly")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        running = LocalStack(
            work_dir=tmp_path_factory.mktemp("ops-stack"),
            parameters={"ThumbnailRuntime": "fargate"},
            stack_name=OPS_STACK,
        ).__enter__()
    try:
        with overlaid_environment(running.emulator.environment):
            yield running
    finally:
        running.__exit__(None, None, None)


def run_ops(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, dict[str, Any], str]:
    code = ops([*arguments, "--stack", OPS_STACK, "--region", "us-east-1"])
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1]), out


def test_the_sweep_relaunches_a_video_whose_notification_never_arrived(
    stack: LocalStack, tiny_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.upload(tiny_video, STRAY)
    stack.wait_for(STRAY)
    stack.wait_idle()
    s3 = stack.emulator.client("s3")
    # As if the event had been lost: the video is there, its manifest is not.
    s3.delete_object(Bucket=stack.bucket, Key=stack.manifest_key(STRAY))

    code, dry, out = run_ops(capsys, "sweep", "--min-age-minutes", "0")
    assert code == 0 and dry["to_relaunch"] == 1 and dry["launched"] == 0
    assert f"would relaunch: {STRAY} (no manifest)" in out

    code, applied, _ = run_ops(capsys, "sweep", "--min-age-minutes", "0", "--apply")
    assert code == 0 and applied["launched"] == 1
    stack.wait_idle()
    manifest = json.loads(s3.get_object(Bucket=stack.bucket, Key=stack.manifest_key(STRAY))["Body"].read())
    assert manifest["status"] == "ok" and manifest["input"]["origin"].startswith("sweep:")

    code, after, _ = run_ops(capsys, "sweep", "--min-age-minutes", "0")
    assert after["to_relaunch"] == 0 and after["up_to_date"] >= 1


def test_the_replay_relaunches_what_the_launchers_dead_letter_queue_holds(
    stack: LocalStack, tiny_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "videos/ops/dead-lettered.mp4"
    s3, sqs = stack.emulator.client("s3"), stack.emulator.client("sqs")
    # The video is processed, its manifest then lost; Lambda's failure record for its event waits
    # in the dead-letter queue, as after a launcher that failed three times.
    version = s3.put_object(Bucket=stack.bucket, Key=key, Body=tiny_video.read_bytes())["VersionId"]
    stack.wait_idle()
    s3.delete_object(Bucket=stack.bucket, Key=stack.manifest_key(key))
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventTime": "2026-11-27T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "responseElements": {"x-amz-request-id": "REPLAYED1"},
                "s3": {"bucket": {"name": stack.bucket}, "object": {"key": key, "versionId": version}},
            }
        ]
    }
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}
    sqs.send_message(QueueUrl=stack.outputs["DeadLetterQueueUrl"], MessageBody=json.dumps(record))

    code, dry, _ = run_ops(capsys, "replay")
    assert code == 0 and (dry["messages"], dry["jobs"], dry["launched"]) == (1, 1, 0)
    code, applied, _ = run_ops(capsys, "replay", "--apply")
    assert code == 0 and applied["launched"] == 1
    stack.wait_idle()
    manifest = json.loads(s3.get_object(Bucket=stack.bucket, Key=stack.manifest_key(key))["Body"].read())
    assert manifest["status"] == "ok" and manifest["input"]["request_id"] == "REPLAYED1"
    assert manifest["input"]["origin"].startswith("replay:")
    code, again, _ = run_ops(capsys, "replay")
    assert again["messages"] == 0  # what was relaunched left the queue


def test_ops_without_a_stack_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], stack: LocalStack
) -> None:
    assert ops(["sweep", "--stack", "no-such-stack", "--region", "us-east-1"]) == 2
    assert "no-such-stack" in capsys.readouterr().err
