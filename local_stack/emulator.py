"""The embedded AWS: moto in server mode on a free loopback port, reached over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import requests
from moto.server import ThreadedMotoServer

# Until tests/unit/worker/test_s3io.py imports it from devkit (another branch is splitting that file).

REGION = "us-east-1"

# Fake credentials: the emulator accepts any, and they keep boto3 from looking for real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True)
class Emulator:
    """A running emulator: its endpoint and the environment that points boto3 at it."""

    endpoint_url: str
    region: str = REGION

    @property
    def environment(self) -> dict[str, str]:
        """Variables that make any boto3 program (a subprocess too) talk to this emulator."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client bound to the emulator, whatever the process environment says."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}, **config),
        )

    def reset(self) -> None:
        """Clear every resource the emulator holds."""
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def pin_ecs_task_status(self) -> None:
        """Keep ECS tasks RUNNING until stopped: moto otherwise advances them on every describe."""
        requests.post(
            f"{self.endpoint_url}/moto-api/state-manager/set-transition",
            json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000}},
            timeout=10,
        ).raise_for_status()


@contextmanager
def running_emulator(host: str = "127.0.0.1", port: int = 0) -> Iterator[Emulator]:
    """Start moto server in this process (port 0: the OS picks a free one) and stop it afterwards."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        yield Emulator(endpoint_url=f"http://{bound_host}:{bound_port}")
    finally:
        server.stop()
