"""A local stand-in for AWS: moto in server mode, in its own process group, on a loopback port.
Everything that talks to it (boto3 here, the emulated functions) gets AWS_ENDPOINT_URL and fake
credentials, so no request can reach a real account."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from . import processes

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class LocalAws:
    def __init__(self, port: int | None = None, log: Path | None = None):
        self.port = port or processes.free_port()
        self.log = log
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for a process that must use this local AWS and nothing else."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> LocalAws:
        env = {"PATH": "/usr/bin:/bin", **self.env()}
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = processes.spawn(argv, env=env, log=self.log)
        processes.wait_for_port(self.port, self.proc, timeout=30, what="moto server")
        return self

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=REGION,
        ).client(service, endpoint_url=self.endpoint)

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None
