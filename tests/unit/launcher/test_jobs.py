"""S3 records -> jobs: every record, keys decoded, non-videos skipped with a reason, bad records reported."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event

from launcher_support import load_event
from thumbnail_launcher.jobs import InvalidEventError, Job, ParsedEvent, parse_event

CONTRACT_FIELDS = {
    "bucket",
    "key",
    "version_id",
    "etag",
    "size",
    "event_time",
    "request_id",
    "attempt",
    "origin",
}


def parse(event: dict[str, Any]) -> ParsedEvent:
    return parse_event(S3Event(event), video_prefix="videos/", video_suffix=".mp4")


def test_single_put_becomes_the_contracts_job() -> None:
    event = load_event("put.json")
    record = event["Records"][0]
    parsed = parse(event)
    assert parsed.skipped == () and parsed.invalid == ()
    (job,) = parsed.jobs
    assert job.contract() == {
        "bucket": record["s3"]["bucket"]["name"],
        "key": "videos/big-buck-bunny.mp4",
        "version_id": record["s3"]["object"]["versionId"],
        "etag": record["s3"]["object"]["eTag"],
        "size": record["s3"]["object"]["size"],
        "event_time": record["eventTime"],
        "request_id": record["responseElements"]["x-amz-request-id"],
        "attempt": 1,
        "origin": "event",
    }
    assert set(job.contract()) == CONTRACT_FIELDS
    assert job.sequencer == record["s3"]["object"]["sequencer"]


def test_url_encoded_key_is_decoded() -> None:
    (job,) = parse(load_event("put-special-key.json")).jobs
    assert job.key == "videos/Trips 2024/Été à Paris/clip + extra 100% 日本.mp4"


def test_every_record_of_a_multi_record_event_is_a_job() -> None:
    parsed = parse(load_event("put-many.json"))
    assert [job.key for job in parsed.jobs] == [
        "videos/lectures/week-01.mp4",
        "videos/lectures/week-02.mp4",
        "videos/lectures/week 03 (final).mp4",
    ]
    assert len({job.request_id for job in parsed.jobs}) == 3


def test_complete_multipart_upload_is_a_job() -> None:
    (job,) = parse(load_event("complete-multipart.json")).jobs
    assert job.key == "videos/4k/drone-footage.mp4"
    assert job.etag is not None and job.etag.endswith("-128")


def test_suffix_is_compared_case_insensitively() -> None:
    (job,) = parse(load_event("put-uppercase-suffix.json")).jobs
    assert job.key == "videos/phone/IMG_0042.MP4"


@pytest.mark.parametrize(
    ("event_file", "key", "reason"),
    [
        ("put-outside-prefix.json", "uploads/raw/holiday.mp4", "key is outside the prefix 'videos/'"),
        ("put-other-suffix.json", "videos/notes/readme.txt", "key does not end with '.mp4'"),
    ],
)
def test_non_video_records_are_skipped_with_a_reason(event_file: str, key: str, reason: str) -> None:
    parsed = parse(load_event(event_file))
    assert parsed.jobs == () and parsed.invalid == ()
    (skipped,) = parsed.skipped
    assert (skipped.key, skipped.reason) == (key, reason)


def test_s3_test_event_is_skipped() -> None:
    event = load_event("test-event.json")
    parsed = parse(event)
    assert parsed.jobs == () and parsed.invalid == ()
    (skipped,) = parsed.skipped
    assert skipped.reason == "s3:TestEvent"
    assert skipped.request_id == event["RequestId"]


def test_moto_shaped_record_is_read() -> None:
    """moto's records lack sequencer and requestParameters and encode '/' as %2F (docs/emulator-gaps.md)."""
    event = load_event("put.json")
    record = event["Records"][0]
    del record["requestParameters"], record["userIdentity"], record["s3"]["object"]["sequencer"]
    del record["s3"]["object"]["versionId"]
    record["s3"]["object"]["key"] = "videos%2Fsub+dir%2Fa%2Bb.mp4"
    (job,) = parse(event).jobs
    assert job.key == "videos/sub dir/a+b.mp4"
    assert job.sequencer is None and job.version_id is None


def test_non_creation_event_is_skipped() -> None:
    event = load_event("put.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    (skipped,) = parse(event).skipped
    assert "ObjectRemoved:Delete" in skipped.reason


def test_malformed_record_is_invalid_and_does_not_hide_the_others() -> None:
    event = load_event("put-many.json")
    del event["Records"][1]["s3"]["object"]["key"]
    broken_source = copy.deepcopy(event["Records"][0])
    broken_source["eventSource"] = "aws:sqs"
    event["Records"].append(broken_source)
    parsed = parse(event)
    assert [job.key for job in parsed.jobs] == [
        "videos/lectures/week-01.mp4",
        "videos/lectures/week 03 (final).mp4",
    ]
    assert [invalid.index for invalid in parsed.invalid] == [1, 3]
    assert "key" in parsed.invalid[0].reason
    assert "aws:sqs" in parsed.invalid[1].reason


@pytest.mark.parametrize("payload", [{}, {"Records": "nope"}, {"detail-type": "Object Created"}])
def test_payload_that_is_not_an_s3_notification_is_rejected(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidEventError, match="not an S3 event notification"):
        parse(payload)


def test_job_json_is_deterministic_and_ascii() -> None:
    (job,) = parse(load_event("put-special-key.json")).jobs
    again = parse(load_event("put-special-key.json")).jobs[0]
    assert job.to_json() == again.to_json()
    assert job.to_json().isascii()


def test_a_job_read_back_from_its_json_is_the_same_job() -> None:
    (job,) = parse(load_event("put.json")).jobs
    again = Job.from_contract(json.loads(job.to_json()))
    assert again.contract() == job.contract()
    assert again.next_attempt().attempt == 2
    relaunched = again.next_attempt().relaunched("replay:m-1")
    assert (relaunched.attempt, relaunched.origin) == (1, "replay:m-1")


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempt", 0), ("attempt", "2"), ("attempt", True), ("key", ""), ("size", -1), ("origin", "")],
)
def test_a_job_that_breaks_the_contract_is_refused_naming_the_field(field: str, value: Any) -> None:
    (job,) = parse(load_event("put.json")).jobs
    with pytest.raises(ValueError, match=field):
        Job.from_contract({**job.contract(), field: value})
