"""The launcher's configuration: read once from the environment into a typed, frozen object."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

# Names fixed by docs/contract.md ("Launcher environment").
CLUSTER_ARN = "CLUSTER_ARN"
TASK_DEFINITION_ARN = "TASK_DEFINITION_ARN"
CONTAINER_NAME = "CONTAINER_NAME"
SUBNET_IDS = "SUBNET_IDS"
SECURITY_GROUP_IDS = "SECURITY_GROUP_IDS"
ASSIGN_PUBLIC_IP = "ASSIGN_PUBLIC_IP"
USE_FARGATE_SPOT = "USE_FARGATE_SPOT"
VIDEO_PREFIX = "VIDEO_PREFIX"
VIDEO_SUFFIX = "VIDEO_SUFFIX"
BUCKET_NAME = "BUCKET_NAME"
# Where jobs run (parameter ThumbnailRuntime) and the worker function the launcher invokes.
THUMBNAIL_RUNTIME = "THUMBNAIL_RUNTIME"
WORKER_FUNCTION_NAME = "WORKER_FUNCTION_NAME"
# Quotas and bursts (README "Quotas and bursts"): the pending-jobs queue, the job ledger, how
# many tasks may run at once, how many waiting jobs one task takes, and the worker's deadline
# that bounds a batch.
PENDING_QUEUE_URL = "PENDING_QUEUE_URL"
JOB_LEDGER_TABLE = "JOB_LEDGER_TABLE"
MAX_CONCURRENT_TASKS = "MAX_CONCURRENT_TASKS"
MAX_JOBS_PER_TASK = "MAX_JOBS_PER_TASK"
WORKER_DEADLINE_SECONDS = "WORKER_DEADLINE_SECONDS"
# Read by Powertools itself; checked here so that a missing one fails at the first event,
# not when the first metric is flushed.
POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
# The recovery function's own (docs/contract.md "Recovery environment").
OUTPUT_PREFIX = "OUTPUT_PREFIX"
MAX_ATTEMPTS = "MAX_ATTEMPTS"
MAX_TASK_MEMORY = "MAX_TASK_MEMORY"
RETRY_DELAY_SECONDS = "RETRY_DELAY_SECONDS"
RETRY_QUEUE_URL = "RETRY_QUEUE_URL"
FAILED_JOBS_QUEUE_URL = "FAILED_JOBS_QUEUE_URL"

_CLUSTER_ARN = re.compile(r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster/[A-Za-z0-9_-]{1,255}")
_TASK_DEFINITION_ARN = re.compile(
    r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}:\d+"
)
_CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}")
_SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8,17}")
_SECURITY_GROUP_ID = re.compile(r"sg-[0-9a-f]{8,17}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_QUEUE_URL = re.compile(r"https?://\S+/\d{12}/[A-Za-z0-9_-]{1,80}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./#:-]{0,254}")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
# A function name, or its ARN (Lambda's FunctionName: at most 64 characters for a name).
_FUNCTION_NAME = re.compile(r"(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}")
_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
# awsvpcConfiguration accepts at most 16 subnets and 5 security groups.
_MAX_SUBNETS = 16
_MAX_SECURITY_GROUPS = 5

AssignPublicIp = Literal["ENABLED", "DISABLED"]
# auto: the worker function first, a Fargate task for heavy jobs and when the function fails;
# lambda: always the function; fargate: always a task (README "Where a job runs").
Runtime = Literal["auto", "lambda", "fargate"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "lambda", "fargate")


class SettingsError(ValueError):
    """One or more launcher environment variables are missing or malformed; the message names each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid launcher settings: " + "; ".join(problems))


@dataclass(frozen=True)
class Settings:
    cluster_arn: str
    task_definition_arn: str
    container_name: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    assign_public_ip: AssignPublicIp
    use_fargate_spot: bool
    video_prefix: str
    video_suffix: str
    bucket_name: str
    runtime: Runtime = "fargate"
    worker_function_name: str = ""
    pending_queue_url: str = ""
    job_ledger_table: str = ""
    max_concurrent_tasks: int = 4
    max_jobs_per_task: int = 10
    worker_deadline_seconds: int = 900

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse and validate every variable; report all problems at once, each by its name."""
        reader = _Reader(env)
        settings = cls.read(reader)
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings

    @classmethod
    def read(cls, reader: _Reader) -> Settings:
        """Every launcher variable through `reader`, which collects the problems."""
        settings = cls(
            cluster_arn=reader.matching(CLUSTER_ARN, _CLUSTER_ARN, "an ECS cluster ARN"),
            task_definition_arn=reader.matching(
                TASK_DEFINITION_ARN, _TASK_DEFINITION_ARN, "an ECS task definition ARN with a revision"
            ),
            container_name=reader.matching(CONTAINER_NAME, _CONTAINER_NAME, "a container name"),
            subnet_ids=reader.id_list(SUBNET_IDS, _SUBNET_ID, _MAX_SUBNETS, "subnet-..."),
            security_group_ids=reader.id_list(
                SECURITY_GROUP_IDS, _SECURITY_GROUP_ID, _MAX_SECURITY_GROUPS, "sg-..."
            ),
            assign_public_ip=reader.assign_public_ip(ASSIGN_PUBLIC_IP),
            use_fargate_spot=reader.boolean(USE_FARGATE_SPOT),
            video_prefix=reader.required(VIDEO_PREFIX),
            video_suffix=reader.checked(
                VIDEO_SUFFIX, lambda v: v.startswith(".") and len(v) > 1, "a file suffix such as '.mp4'"
            ),
            bucket_name=reader.matching(BUCKET_NAME, _BUCKET_NAME, "an S3 bucket name"),
            runtime=reader.runtime(THUMBNAIL_RUNTIME),
            worker_function_name=reader.matching(
                WORKER_FUNCTION_NAME, _FUNCTION_NAME, "a Lambda function name or ARN"
            ),
            pending_queue_url=reader.matching(PENDING_QUEUE_URL, _QUEUE_URL, "an SQS queue URL"),
            job_ledger_table=reader.matching(JOB_LEDGER_TABLE, _TABLE_NAME, "a DynamoDB table name"),
            max_concurrent_tasks=reader.integer(MAX_CONCURRENT_TASKS, 1, 5000),
            max_jobs_per_task=reader.integer(MAX_JOBS_PER_TASK, 1, 100),
            worker_deadline_seconds=reader.integer(WORKER_DEADLINE_SECONDS, 60, 86400),
        )
        reader.matching(POWERTOOLS_SERVICE_NAME, _NAME, "a service name")
        reader.matching(POWERTOOLS_METRICS_NAMESPACE, _NAME, "a CloudWatch namespace")
        reader.checked(
            POWERTOOLS_LOG_LEVEL,
            lambda v: v.upper() in _LOG_LEVELS,
            "one of " + "/".join(sorted(_LOG_LEVELS)),
        )
        return settings


@dataclass(frozen=True)
class RecoverySettings:
    """The recovery function's configuration: the launcher's (it starts the same tasks) and its own."""

    launch: Settings
    output_prefix: str
    max_attempts: int
    max_task_memory: int
    retry_delay_seconds: int
    retry_queue_url: str
    failed_jobs_queue_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RecoverySettings:
        reader = _Reader(env)
        settings = cls(
            launch=Settings.read(reader),
            output_prefix=reader.checked(OUTPUT_PREFIX, lambda v: v.endswith("/"), "a prefix ending in '/'"),
            max_attempts=reader.integer(MAX_ATTEMPTS, 1, 10),
            max_task_memory=reader.integer(MAX_TASK_MEMORY, 512, 30720),
            retry_delay_seconds=reader.integer(RETRY_DELAY_SECONDS, 0, 900),
            retry_queue_url=reader.matching(RETRY_QUEUE_URL, _QUEUE_URL, "an SQS queue URL"),
            failed_jobs_queue_url=reader.matching(FAILED_JOBS_QUEUE_URL, _QUEUE_URL, "an SQS queue URL"),
        )
        if settings.output_prefix and settings.output_prefix == settings.launch.video_prefix:
            reader.problems.append(f"{OUTPUT_PREFIX} must differ from {VIDEO_PREFIX}")
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings


def environment_variables() -> frozenset[str]:
    """Every variable Settings.from_env reads (all required): what template.yaml must set."""
    return frozenset(
        {
            CLUSTER_ARN,
            TASK_DEFINITION_ARN,
            CONTAINER_NAME,
            SUBNET_IDS,
            SECURITY_GROUP_IDS,
            ASSIGN_PUBLIC_IP,
            USE_FARGATE_SPOT,
            VIDEO_PREFIX,
            VIDEO_SUFFIX,
            BUCKET_NAME,
            THUMBNAIL_RUNTIME,
            WORKER_FUNCTION_NAME,
            PENDING_QUEUE_URL,
            JOB_LEDGER_TABLE,
            MAX_CONCURRENT_TASKS,
            MAX_JOBS_PER_TASK,
            WORKER_DEADLINE_SECONDS,
            POWERTOOLS_SERVICE_NAME,
            POWERTOOLS_METRICS_NAMESPACE,
            POWERTOOLS_LOG_LEVEL,
        }
    )


def recovery_environment_variables() -> frozenset[str]:
    """Every variable RecoverySettings.from_env reads (all required)."""
    return environment_variables() | {
        OUTPUT_PREFIX,
        MAX_ATTEMPTS,
        MAX_TASK_MEMORY,
        RETRY_DELAY_SECONDS,
        RETRY_QUEUE_URL,
        FAILED_JOBS_QUEUE_URL,
    }


@functools.cache
def get_settings() -> Settings:
    """The settings of this execution environment, parsed on first use (tests: get_settings.cache_clear())."""
    return Settings.from_env(os.environ)


@functools.cache
def get_recovery_settings() -> RecoverySettings:
    """The recovery function's settings, parsed on first use (tests: cache_clear())."""
    return RecoverySettings.from_env(os.environ)


class _Reader:
    """Reads variables and collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def required(self, name: str) -> str:
        value = self._env.get(name, "").strip()
        if not value:
            self.problems.append(f"{name} is missing or empty")
        return value

    def checked(self, name: str, is_valid: Callable[[str], bool], expected: str) -> str:
        value = self.required(name)
        if value and not is_valid(value):
            self.problems.append(f"{name} must be {expected}, got {value!r}")
        return value

    def matching(self, name: str, pattern: re.Pattern[str], expected: str) -> str:
        return self.checked(name, lambda v: pattern.fullmatch(v) is not None, expected)

    def id_list(self, name: str, pattern: re.Pattern[str], limit: int, example: str) -> tuple[str, ...]:
        value = self.required(name)
        if not value:
            return ()
        ids = tuple(part.strip() for part in value.split(","))
        bad = [part for part in ids if not pattern.fullmatch(part)]
        if bad:
            self.problems.append(f"{name} must be comma-separated ids like {example}, got {bad!r}")
        elif len(ids) > limit:
            self.problems.append(f"{name} holds {len(ids)} ids; RunTask accepts at most {limit}")
        elif len(set(ids)) != len(ids):
            self.problems.append(f"{name} repeats an id: {value!r}")
        return ids

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.checked(
            name, lambda v: v.isascii() and v.isdigit() and low <= int(v) <= high, f"an integer {low}-{high}"
        )
        return int(value) if value.isascii() and value.isdigit() else low

    def boolean(self, name: str) -> bool:
        value = self.checked(name, lambda v: v.lower() in {"true", "false"}, "'true' or 'false'")
        return value.lower() == "true"

    def runtime(self, name: str) -> Runtime:
        value = self.checked(name, lambda v: v in RUNTIMES, " or ".join(f"'{r}'" for r in RUNTIMES))
        return next((runtime for runtime in RUNTIMES if runtime == value), "fargate")

    def assign_public_ip(self, name: str) -> AssignPublicIp:
        value = self.checked(name, lambda v: v in {"ENABLED", "DISABLED"}, "'ENABLED' or 'DISABLED'")
        return "ENABLED" if value == "ENABLED" else "DISABLED"
