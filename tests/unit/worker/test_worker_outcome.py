"""A job's outcome: each worker error's exit code, reason and error manifest, and real bugs apart."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from thumbnailer.errors import (
    InvalidOptionsError,
    S3ReadError,
    SourceChangedError,
    SourceNotFoundError,
    SourceUnreadableError,
    UnusableVideoError,
    WorkerError,
)
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options
from thumbnailer.outcome import execute
from thumbnailer.pipeline import Input


class RecordingSink:
    def __init__(self) -> None:
        self.written: dict[str, bytes] = {}

    def put(
        self, name: str, body: bytes, *, content_type: str, cache_control: str, metadata: Mapping[str, str]
    ) -> str:
        self.written[name] = body
        return name


def _run(error: Exception) -> tuple[int, dict[str, Any] | None, RecordingSink, list[dict[str, Any]]]:
    stream = io.StringIO()
    logger = Logger(service=f"outcome-{uuid.uuid4().hex[:8]}", logger_handler=logging.StreamHandler(stream))

    def prepare() -> tuple[Input, Options]:
        raise error

    sink = RecordingSink()
    code, document = execute(prepare, OutputNames("a.mp4"), sink, logger, {"video": "a.mp4"})
    return code, document, sink, [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (InvalidOptionsError("bad --at"), 2, "invalid_options"),
        (UnusableVideoError("no video", "no_video_stream"), 3, "no_video_stream"),
        (SourceNotFoundError("gone"), 3, "source_not_found"),
        (SourceUnreadableError("archived"), 1, "source_unreadable"),
        (S3ReadError("kept failing"), 1, "s3_read_failed"),
    ],
)
def test_a_worker_error_gives_its_exit_code_and_an_error_manifest(
    error: WorkerError, code: int, reason: str
) -> None:
    got, document, sink, logs = _run(error)
    assert got == code
    assert document is not None and document["error"]["reason"] == reason
    assert document["error"]["exit_code"] == code and document["error"]["message"] == error.message
    assert list(sink.written) == ["a.mp4.json"]
    [line] = [line for line in logs if line["level"] == "ERROR"]
    assert line["message"] == "no thumbnail" and line["reason"] == reason  # not "unexpected failure"


def test_a_source_changed_while_read_exits_1_without_a_manifest() -> None:
    code, document, sink, logs = _run(SourceChangedError("overwritten"))
    assert (code, document, sink.written) == (1, None, {})
    assert [line["reason"] for line in logs if line["level"] == "WARNING"] == ["source_changed"]


def test_a_bug_is_an_internal_error_with_its_traceback_logged() -> None:
    code, document, _, logs = _run(KeyError("oops"))
    assert code == 1 and document is not None
    assert document["error"]["reason"] == "internal_error"
    assert document["error"]["message"] == "KeyError: 'oops'"
    assert any(line["message"] == "unexpected failure" and "exception" in line for line in logs)
