"""`make invoke EVENT=path.json`: send an S3 event to the running local stack's launcher.

The local stack (`make local-up`, in its `python -m local_stack serve` process) hands the
launcher every message of the SQS queue that its bucket notifies (deploy.py, events.py). This
sends the event JSON to that same queue, found from the bucket's notification configuration,
so the running launcher handles it exactly as it handles an upload's event. Then it prints what
the launcher did, from the lines the invocation added to the launcher's log, and waits for the
worker task of every video it started: its exit, its manifest, its thumbnails.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import requests

from local_stack.emulator import Emulator
from local_stack.task_runner import container_setting, override_jobs

QUEUE_TIMEOUT_S = 60.0
TASK_TIMEOUT_S = 300.0
# The launcher's log line for a job it sent to the worker function (thumbnail_launcher/batch.py).
FUNCTION_SENT = "Job sent to the worker function"


class InvokeError(Exception):
    """The event cannot be sent; the message says why and what to do."""


@dataclass(frozen=True)
class RunningStack:
    """The stack `make local-up` started, as its state file describes it."""

    emulator: Emulator
    bucket: str
    outputs: Mapping[str, str]
    launcher_log: Path
    task_logs: Path

    @classmethod
    def from_state(cls, state_file: Path) -> RunningStack:
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            endpoint = state["endpoint"]
            requests.get(endpoint, timeout=5)
        except (OSError, ValueError, KeyError, requests.RequestException):
            raise InvokeError("no local stack is running: start it with `make local-up`") from None
        task_logs = Path(state["task_logs"])
        return cls(
            emulator=Emulator(endpoint_url=endpoint),
            bucket=state["bucket"],
            outputs=state.get("outputs", {}),
            launcher_log=Path(state.get("launcher_log") or task_logs.parent / "launcher.log"),
            task_logs=task_logs,
        )

    def event_queue_url(self) -> str:
        """The queue the bucket notifies: the launcher's event source in the local stack."""
        s3, sqs = self.emulator.client("s3"), self.emulator.client("sqs")
        notification = s3.get_bucket_notification_configuration(Bucket=self.bucket)
        arns = {item["QueueArn"] for item in notification.get("QueueConfigurations", [])}
        if len(arns) != 1:
            raise InvokeError(f"expected the bucket to notify one queue, found {sorted(arns)}")
        url: str = sqs.get_queue_url(QueueName=arns.pop().rsplit(":", 1)[-1])["QueueUrl"]
        return url

    def worker_setting(self, name: str) -> str:
        """A variable of the worker's container environment, as the task definition holds it."""
        return container_setting(self.emulator.client("ecs"), self.outputs["TaskDefinitionArn"], name)


def load_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except OSError as error:
        raise InvokeError(f"cannot read the event {path}: {error.strerror}") from None
    except ValueError as error:
        raise InvokeError(f"{path} is not JSON: {error}") from None
    if not isinstance(event, dict):
        raise InvokeError(f"{path} is not an S3 notification (a JSON object with Records)")
    return event


def records(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = event.get("Records")
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def s3_part(record: Mapping[str, Any]) -> dict[str, Any]:
    part = record.get("s3")
    return part if isinstance(part, dict) else {}


def rewrite_buckets(event: dict[str, Any], bucket: str) -> list[str]:
    """Point every record at the local bucket (the samples name an account's); what changed."""
    notes = []
    for record in records(event):
        named = s3_part(record).get("bucket")
        if not isinstance(named, dict) or named.get("name") == bucket:
            continue
        notes.append(f"bucket {named.get('name')!r} -> {bucket!r}")
        named["name"], named["arn"] = bucket, f"arn:aws:s3:::{bucket}"
    return list(dict.fromkeys(notes))


def record_keys(event: Mapping[str, Any]) -> list[str]:
    keys = []
    for record in records(event):
        obj = s3_part(record).get("object")
        if isinstance(obj, dict) and isinstance(obj.get("key"), str):
            keys.append(unquote_plus(obj["key"]))  # S3 sends keys URL-encoded, spaces as +
    return keys


@dataclass
class LauncherReport:
    """What one invocation of the launcher wrote to its log."""

    lines: list[str] = field(default_factory=list)
    task_arns: list[str] = field(default_factory=list)
    function_keys: list[str] = field(default_factory=list)  # jobs sent to the worker function
    metrics: dict[str, float] = field(default_factory=dict)


def read_report(log: Path, offset: int) -> LauncherReport:
    report = LauncherReport()
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return report
    for raw in text.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            _note(entry, report)
    return report


def _note(entry: Mapping[str, Any], report: LauncherReport) -> None:
    if "_aws" in entry:  # the metrics (embedded metric format), flushed after each invocation
        metric_names = [m["Name"] for d in entry["_aws"].get("CloudWatchMetrics", []) for m in d["Metrics"]]
        for name in metric_names:
            value = entry.get(name)
            values = value if isinstance(value, list) else [value]
            report.metrics[name] = sum(v for v in values if isinstance(v, int | float))
        return
    message = entry.get("message")
    if not isinstance(message, str) or "level" not in entry:
        return
    details = [
        f"{name}={entry[name]}"
        for name in ("s3_key", "reason", "task_arn", "record_index")
        if entry.get(name) is not None
    ]
    if entry.get("exception"):
        details.append(str(entry["exception"]).strip().splitlines()[-1])
    report.lines.append(f"{entry['level']:<7} {message}" + (f" ({', '.join(details)})" if details else ""))
    if isinstance(entry.get("task_arn"), str):
        report.task_arns.append(entry["task_arn"])
    elif message == FUNCTION_SENT and isinstance(entry.get("s3_key"), str):
        report.function_keys.append(entry["s3_key"])


def invoke(event_path: Path, state_file: Path) -> int:
    """Send the event, print what the launcher did and what each task it started wrote."""
    try:
        stack = RunningStack.from_state(state_file)
        event = load_event(event_path)
        queue_url = stack.event_queue_url()
    except InvokeError as error:
        print(f"error: {error}")
        return 2
    for note in rewrite_buckets(event, stack.bucket):
        print(f"rewrote {note} (the local stack's bucket; the launcher skips other buckets)")
    offset = stack.launcher_log.stat().st_size if stack.launcher_log.exists() else 0
    sqs = stack.emulator.client("sqs")
    sent_at = datetime.now(UTC)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
    print(f"sent {event_path} to the launcher's event queue; waiting for the launcher ...")
    if not _drained(sqs, queue_url, QUEUE_TIMEOUT_S):
        print(f"the launcher did not take the event within {QUEUE_TIMEOUT_S:.0f} s; see {stack.launcher_log}")
        return 1
    report = read_report(stack.launcher_log, offset)
    _print_report(report, stack.launcher_log)
    outcomes = [_wait_for_task(stack, arn) for arn in dict.fromkeys(report.task_arns)]
    outcomes += [_wait_for_manifest(stack, key, sent_at) for key in dict.fromkeys(report.function_keys)]
    return 0 if all(code == 0 for code in outcomes) else 1


def _wait_for_manifest(stack: RunningStack, key: str, since: datetime) -> int:
    """A job the worker function took: wait for a manifest newer than the event; its exit code."""
    print(f"waiting for the worker function's manifest of {key} ...")
    s3, deadline = stack.emulator.client("s3"), time.monotonic() + TASK_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            head = s3.head_object(Bucket=stack.bucket, Key=_manifest_key(stack, key))
        except s3.exceptions.ClientError:
            head = None
        if head is not None and head["LastModified"] >= since.replace(microsecond=0):
            manifest = _print_manifest(stack, key)
            error = (manifest or {}).get("error") or {}
            return int(error.get("exit_code") or 0) if manifest and manifest.get("status") != "ok" else 0
        time.sleep(0.3)
    print(f"  no manifest after {TASK_TIMEOUT_S:.0f} s")
    return 1


def _drained(sqs: Any, queue_url: str, timeout_s: float) -> bool:
    """The pump deletes a message once the launcher has handled it (or it was retried and dropped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if all(int(value) == 0 for value in attributes.values()):
            return True
        time.sleep(0.2)
    return False


def _print_report(report: LauncherReport, log: Path) -> None:
    print(f"the launcher ({log}):")
    for line in report.lines:
        print(f"  {line}")
    if report.metrics:
        counts = ", ".join(f"{name} {value:g}" for name, value in sorted(report.metrics.items()))
        print(f"  metrics: {counts}")
    if not report.lines and not report.metrics:
        print("  wrote nothing for this event (see the log)")


def _wait_for_task(stack: RunningStack, task_arn: str) -> int:
    """Wait for the task to stop, then show its manifest; the worker's exit code."""
    ecs = stack.emulator.client("ecs")
    task_id = task_arn.rsplit("/", 1)[-1]
    print(f"waiting for task {task_id} ...")
    deadline = time.monotonic() + TASK_TIMEOUT_S
    while True:
        task = ecs.describe_tasks(cluster=stack.outputs["ClusterArn"], tasks=[task_arn])["tasks"][0]
        if task.get("lastStatus") == "STOPPED" and task.get("stoppedReason"):
            break
        if time.monotonic() > deadline:
            print(f"  still running after {TASK_TIMEOUT_S:.0f} s; its log: {stack.task_logs / task_id}.log")
            return 1
        time.sleep(0.3)
    print(f"  stopped: {task['stoppedReason']}")
    for job in override_jobs(task):  # a batch task (THUMBNAIL_JOBS): each job's manifest
        _print_manifest(stack, str(job.get("key", "")))
    print(f"  worker log: {stack.task_logs / task_id}.log")
    # The local runner names the worker's exit code in the stopped reason (the emulator's container has none).
    found = re.search(r"exit code (\d+)", str(task["stoppedReason"]))
    return int(found.group(1)) if found else 1


def _manifest_key(stack: RunningStack, key: str) -> str:
    rest = key.removeprefix(stack.worker_setting("VIDEO_PREFIX"))
    return f"{stack.worker_setting('OUTPUT_PREFIX')}{rest}.json"


def _print_manifest(stack: RunningStack, key: str) -> dict[str, Any] | None:
    manifest_key = _manifest_key(stack, key)
    s3 = stack.emulator.client("s3")
    try:
        body = s3.get_object(Bucket=stack.bucket, Key=manifest_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        print(f"  no manifest at s3://{stack.bucket}/{manifest_key}")
        return None
    manifest: dict[str, Any] = json.loads(body)
    print(f"  manifest: s3://{stack.bucket}/{manifest_key} (status {manifest.get('status')})")
    if manifest.get("status") != "ok":
        error = manifest.get("error") or {}
        print(f"  error: {error.get('reason')} (exit {error.get('exit_code')}): {error.get('message')}")
        if error.get("reason") == "source_not_found":
            print(
                f"  (the event names s3://{stack.bucket}/{key}, which the local bucket does not hold: "
                "upload the video under that key first, or edit the event's key; an event's "
                "versionId must name a version the bucket holds: leave it out otherwise)"
            )
    for thumbnail in manifest.get("thumbnails") or []:
        size = f"{thumbnail['width']}x{thumbnail['height']}"
        print(f"  thumbnail: s3://{stack.bucket}/{thumbnail['name']} ({size})")
    for warning in manifest.get("warnings") or []:
        print(f"  warning: {warning}")
    return manifest
