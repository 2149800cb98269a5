"""Settings: parsed once, typed, and failing fast with the name of every bad variable."""

from __future__ import annotations

import re

import pytest

from devkit.paths import REPO_ROOT
from thumbnail_launcher import settings
from thumbnail_launcher.settings import Settings, SettingsError, environment_variables, get_settings

VALID = {
    "CLUSTER_ARN": "arn:aws:ecs:us-east-1:123456789012:cluster/thumbnails",
    "TASK_DEFINITION_ARN": "arn:aws:ecs:us-east-1:123456789012:task-definition/thumbnail-worker:7",
    "CONTAINER_NAME": "worker",
    "SUBNET_IDS": "subnet-0a1b2c3d4e5f60718, subnet-1b2c3d4e",
    "SECURITY_GROUP_IDS": "sg-0123456789abcdef0",
    "ASSIGN_PUBLIC_IP": "ENABLED",
    "USE_FARGATE_SPOT": "True",
    "VIDEO_PREFIX": "videos/",
    "VIDEO_SUFFIX": ".mp4",
    "BUCKET_NAME": "thumbnails-123456789012-us-east-1-0a1b2c3d4e5f",
    "THUMBNAIL_RUNTIME": "auto",
    "WORKER_FUNCTION_NAME": "thumbnail-creator-WorkerFunction-0A1B2C3D4E5F",
    "PENDING_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/thumbnail-creator-PendingJobsQueue-0A1B",
    "JOB_LEDGER_TABLE": "thumbnail-creator-JobLedger-0A1B2C3D4E5F",
    "MAX_CONCURRENT_TASKS": "6",
    "MAX_JOBS_PER_TASK": "12",
    "WORKER_DEADLINE_SECONDS": "600",
    "POWERTOOLS_SERVICE_NAME": "thumbnail-launcher",
    "POWERTOOLS_METRICS_NAMESPACE": "ThumbnailCreator",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def test_valid_environment_becomes_typed_settings() -> None:
    parsed = Settings.from_env(VALID)
    assert parsed == Settings(
        cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/thumbnails",
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/thumbnail-worker:7",
        container_name="worker",
        subnet_ids=("subnet-0a1b2c3d4e5f60718", "subnet-1b2c3d4e"),
        security_group_ids=("sg-0123456789abcdef0",),
        assign_public_ip="ENABLED",
        use_fargate_spot=True,
        video_prefix="videos/",
        video_suffix=".mp4",
        bucket_name="thumbnails-123456789012-us-east-1-0a1b2c3d4e5f",
        runtime="auto",
        worker_function_name="thumbnail-creator-WorkerFunction-0A1B2C3D4E5F",
        pending_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/thumbnail-creator-PendingJobsQueue-0A1B",
        job_ledger_table="thumbnail-creator-JobLedger-0A1B2C3D4E5F",
        max_concurrent_tasks=6,
        max_jobs_per_task=12,
        worker_deadline_seconds=600,
    )
    with pytest.raises(AttributeError):
        parsed.cluster_arn = "other"  # type: ignore[misc]


def test_environment_variables_are_exactly_the_contracts_launcher_table() -> None:
    contract = (REPO_ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    section = contract.split("## Launcher environment", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))
    assert documented, "no variable found in the contract's launcher table"
    assert environment_variables() == documented
    assert set(VALID) == documented


@pytest.mark.parametrize("name", sorted(environment_variables()))
def test_each_missing_variable_is_named(name: str) -> None:
    env = {key: value for key, value in VALID.items() if key != name}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert raised.value.problems == [f"{name} is missing or empty"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLUSTER_ARN", "thumbnails"),
        ("CLUSTER_ARN", "arn:aws:ecs:us-east-1:123456789012:service/thumbnails"),
        ("TASK_DEFINITION_ARN", "arn:aws:ecs:us-east-1:123456789012:task-definition/thumbnail-worker"),
        ("CONTAINER_NAME", "worker;rm"),
        ("SUBNET_IDS", "subnet-0a1b2c3d,,subnet-1b2c3d4e"),
        ("SUBNET_IDS", "vpc-0a1b2c3d"),
        ("SUBNET_IDS", "subnet-0a1b2c3d,subnet-0a1b2c3d"),
        ("SUBNET_IDS", ",".join(f"subnet-{n:08x}" for n in range(17))),
        ("SECURITY_GROUP_IDS", "sg-xyz"),
        ("ASSIGN_PUBLIC_IP", "enabled"),
        ("THUMBNAIL_RUNTIME", "ecs"),
        ("WORKER_FUNCTION_NAME", "worker function"),
        ("USE_FARGATE_SPOT", "yes"),
        ("VIDEO_SUFFIX", "mp4"),
        ("PENDING_QUEUE_URL", "pending-jobs"),
        ("JOB_LEDGER_TABLE", "a b"),
        ("MAX_CONCURRENT_TASKS", "0"),
        ("MAX_JOBS_PER_TASK", "ten"),
        ("WORKER_DEADLINE_SECONDS", "30"),
        ("POWERTOOLS_LOG_LEVEL", "LOUD"),
        ("POWERTOOLS_METRICS_NAMESPACE", "Thumbnail Creator"),
    ],
)
def test_malformed_value_is_named_with_the_value(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**VALID, name: value})
    (problem,) = raised.value.problems
    assert problem.startswith(f"{name} ")
    assert "missing" not in problem


def test_every_problem_is_reported_at_once() -> None:
    env = {**VALID, "USE_FARGATE_SPOT": "maybe", "ASSIGN_PUBLIC_IP": "ON"}
    del env["CLUSTER_ARN"]
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    for name in ("CLUSTER_ARN", "USE_FARGATE_SPOT", "ASSIGN_PUBLIC_IP"):
        assert name in message
    assert len(raised.value.problems) == 3


def test_settings_are_parsed_once_until_the_cache_is_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in VALID.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    first = get_settings()
    monkeypatch.setenv(settings.VIDEO_PREFIX, "uploads/")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().video_prefix == "uploads/"
    get_settings.cache_clear()


RECOVERY = {
    **VALID,
    "OUTPUT_PREFIX": "thumbnails/",
    "MAX_ATTEMPTS": "3",
    "MAX_TASK_MEMORY": "8192",
    "RETRY_DELAY_SECONDS": "30",
    "RETRY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/retries",
    "FAILED_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/failed-jobs",
}


def test_recovery_settings_are_the_launchers_and_its_own() -> None:
    parsed = settings.RecoverySettings.from_env(RECOVERY)
    assert parsed.launch == Settings.from_env(VALID)
    assert (parsed.max_attempts, parsed.max_task_memory, parsed.retry_delay_seconds) == (3, 8192, 30)
    assert parsed.output_prefix == "thumbnails/"
    assert settings.recovery_environment_variables() == set(RECOVERY)


def test_recovery_environment_is_the_contracts_table() -> None:
    contract = (REPO_ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    section = contract.split("## Recovery environment", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))
    assert settings.recovery_environment_variables() == documented | environment_variables()


@pytest.mark.parametrize(
    ("name", "value"),
    [("MAX_ATTEMPTS", "0"), ("MAX_ATTEMPTS", "three"), ("MAX_TASK_MEMORY", "99999"), ("OUTPUT_PREFIX", "x")],
)
def test_bad_recovery_values_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings.RecoverySettings.from_env({**RECOVERY, name: value})
    assert [problem.split(" ")[0] for problem in raised.value.problems] == [name]


def test_output_prefix_must_differ_from_the_video_prefix() -> None:
    with pytest.raises(SettingsError, match="OUTPUT_PREFIX must differ"):
        settings.RecoverySettings.from_env({**RECOVERY, "OUTPUT_PREFIX": "videos/"})
