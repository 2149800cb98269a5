"""The pipeline under test: the local stack, or the deployed stack named by AWS_SAM_STACK_NAME."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_support import DeployedPipeline, LocalPipeline, Pipeline
from local_stack.stack import LocalStack
from local_stack.video import make_video

DEPLOYED_STACK = os.environ.get("AWS_SAM_STACK_NAME", "")


# Module scope: the stack (its emulator threads, and the launcher's cached clients pointing at
# it) is gone before any other test module runs, and unit tests' mock_aws never sees it.
@pytest.fixture(scope="module", params=["local", "deployed"])
def pipeline(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    if request.param == "deployed":
        if not DEPLOYED_STACK:
            pytest.skip(
                "deployed mode: AWS_SAM_STACK_NAME is not set (set it to a stack deployed with "
                "`sam deploy` and AWS credentials to run these tests against AWS)"
            )
        yield DeployedPipeline(DEPLOYED_STACK)
        return
    if DEPLOYED_STACK:
        pytest.skip(f"AWS_SAM_STACK_NAME={DEPLOYED_STACK}: running against the deployed stack instead")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto: "no CloudFormation support for BucketPolicy ..."
        # The task path (exit codes of tasks); the worker function: test_runtimes.py.
        stack = LocalStack(
            work_dir=tmp_path_factory.mktemp("local-stack"),
            parameters={"ThumbnailRuntime": "fargate"},
            stack_name="thumbnail-creator-pipeline",
        ).__enter__()
    try:
        yield LocalPipeline(stack)
    finally:
        stack.__exit__(None, None, None)


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 160x120, 10 fps: a moving picture with a clock, each frame different from the next."""
    return make_video(
        tmp_path_factory.mktemp("videos") / "tiny.mp4",
        seconds=2.0,
        width=160,
        height=120,
        fps=10,
        black_intro_s=0.3,
    )
