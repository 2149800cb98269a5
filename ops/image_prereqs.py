"""`make image` checks first: a Docker engine with buildx, AWS credentials, the deployed stack.

    python -m ops.image_prereqs --stack thumbnail-creator --region us-east-1

Prints the stack's WorkerRepositoryUri on stdout when every check passes (exit 0); otherwise
names each missing prerequisite and how to get it on stderr (exit 1). A check that depends on a
failed one is not run (no stack lookup without credentials).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Answer:
    ok: bool
    output: str  # stdout when ok, else the last line of what the command said


def run(argv: Sequence[str]) -> Answer:
    """Run a command (no shell); ok when it exits 0."""
    if shutil.which(argv[0]) is None:
        return Answer(False, f"no `{argv[0]}` command on PATH")
    try:
        done = subprocess.run(  # noqa: S603 - fixed commands, no shell
            list(argv), capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return Answer(False, f"`{' '.join(argv)}` did not answer within {TIMEOUT_S:.0f} s")
    if done.returncode == 0:
        return Answer(True, done.stdout.strip())
    said = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    return Answer(False, said[-1] if said else f"exit code {done.returncode}")


def docker_problems() -> list[str]:
    if shutil.which("docker") is None:
        return ["Docker: no `docker` command on PATH; install Docker Engine (or Docker Desktop)"]
    info = run(["docker", "info", "--format", "{{.ServerVersion}}"])
    if not info.ok:
        return [f"Docker engine: `docker info` failed ({info.output}); start the Docker engine"]
    buildx = run(["docker", "buildx", "version"])
    if not buildx.ok:
        return [
            f"Docker buildx: `docker buildx version` failed ({buildx.output}); install the buildx plugin "
            "(docker-buildx-plugin)"
        ]
    return []


def aws_problems(stack: str, region: str) -> tuple[list[str], str | None]:
    """Problems with AWS, or none and the stack's WorkerRepositoryUri."""
    if shutil.which("aws") is None:
        return ["AWS CLI: no `aws` command on PATH; `make venv` installs it into .venv/bin"], None
    identity = run(["aws", "sts", "get-caller-identity", "--region", region, "--output", "text"])
    if not identity.ok:
        return [
            f"AWS credentials: `aws sts get-caller-identity` failed ({identity.output}); "
            "run `aws configure` or set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        ], None
    query = "Stacks[0].Outputs[?OutputKey=='WorkerRepositoryUri'].OutputValue"
    described = run(
        [
            *("aws", "cloudformation", "describe-stacks", "--stack-name", stack, "--region", region),
            *("--query", query, "--output", "text"),
        ]
    )
    if not described.ok:
        return [
            f"the stack {stack!r} in {region}: `aws cloudformation describe-stacks` failed "
            f"({described.output}); deploy it first (make build && sam deploy --guided), "
            "or name it with STACK= and REGION="
        ], None
    if described.output in ("", "None"):
        return [
            f"the stack {stack!r} in {region} has no WorkerRepositoryUri output; deploy template.yaml"
        ], None
    return [], described.output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.image_prereqs", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="thumbnail-creator")
    parser.add_argument("--region", default="us-east-1")
    arguments = parser.parse_args(argv)
    problems = docker_problems()
    aws, repository = aws_problems(arguments.stack, arguments.region)
    problems += aws
    if problems:
        print("make image cannot run yet:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(repository)
    return 0


if __name__ == "__main__":
    sys.exit(main())
