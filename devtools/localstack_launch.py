"""Start LocalStack on the host (no Docker) with the patches of devtools.localstack_patches, bound to loopback.

Two halves, one per interpreter:
- ``LocalStack`` (project virtualenv): starts ``<localstack venv>/bin/python -m devtools.localstack_launch`` in
  its own process group (devtools.processes, so it is stopped on every path, at exit included), waits until
  its services answer, and hands out boto3 clients and the environment that points AWS tools at it.
- ``__main__`` (LocalStack's virtualenv, Python 3.12+): applies the runtime patches, then runs LocalStack's
  own entry point (localstack.runtime.main).

The environment below keeps LocalStack local: it listens on 127.0.0.1 only (GATEWAY_SERVER=hypercorn; the
default server ignores the host part and listens on every interface), runs no DNS server, sends no analytics,
downloads no certificate or infrastructure package, and fails a stack on any resource type it does not
support instead of skipping it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
# Every service the template's resources live in (and STS/IAM for the deploy itself); nothing else is loaded.
SERVICES = (
    "cloudformation,s3,lambda,iam,sts,ssm,apigateway,events,scheduler,cloudwatch,logs,sqs,sns,"
    "stepfunctions,firehose,kms"
)


PLUGIN_DIR = ROOT / "devtools" / "localstack_plugins"  # entry points of this project's LocalStack plugins


def rie_executor_env(python: Path, rie_binary: Path, log_dir: Path) -> dict[str, str]:
    """Server environment that makes LocalStack run Lambda code under the Runtime Interface Emulator
    (devtools.localstack_rie_executor) instead of Docker, with ``python`` (awslambdaric + boto3) as runtime."""
    return {
        "PYTHONPATH": os.pathsep.join((str(ROOT), str(PLUGIN_DIR))),
        "LAMBDA_RUNTIME_EXECUTOR": "rie",
        "MODELOPS_RIE_PYTHON": str(python),
        "MODELOPS_RIE_BINARY": str(rie_binary),
        "MODELOPS_RIE_LOG_DIR": str(log_dir),
    }


def server_env(port: int, data_dir: Path) -> dict[str, str]:
    """Environment of the LocalStack process."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir),
        "PYTHONPATH": str(ROOT),
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"localhost:{port}",
        "GATEWAY_SERVER": "hypercorn",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(data_dir),
        "PERSISTENCE": "0",
        # The new CloudFormation engine took over 60 s per CreateChangeSet; the legacy one is fast.
        "PROVIDER_OVERRIDE_CLOUDFORMATION": "engine-legacy",
        "CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES": "0",
        "SERVICES": SERVICES,
        "EAGER_SERVICE_LOADING": "0",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",
    }


class LocalStack:
    def __init__(
        self,
        python: Path,
        data_dir: Path,
        port: int | None = None,
        log: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        from . import processes

        self.python = python
        self.data_dir = data_dir
        self.port = port or processes.free_port()
        self.log = log
        self.extra_env = extra_env or {}
        self.proc: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """Environment for a process (sam, aws, modelops, pytest) that must talk to this LocalStack only."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "MODELOPS_TARGET": "localstack",
        }

    def start(self, timeout: float = 120.0) -> LocalStack:
        from . import processes

        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(self.python), "-m", "devtools.localstack_launch"]
        self.proc = processes.spawn(
            argv, env={**server_env(self.port, self.data_dir), **self.extra_env}, cwd=ROOT, log=self.log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"LocalStack exited with code {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_localstack/init/ready", timeout=2) as r:
                    if json.load(r).get("completed"):
                        return self
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"LocalStack did not become ready within {timeout:.0f} s; see {self.log}")

    def info(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_localstack/info", timeout=5) as r:
            return dict(json.load(r))

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        ).client(service, endpoint_url=self.endpoint, config=Config(retries={"max_attempts": 2}))

    def stop(self) -> None:
        from . import processes

        if self.proc is not None:
            processes.stop(self.proc, grace=5.0)  # its shutdown can hang on a service; then SIGKILL
            self.proc = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _main() -> None:
    from devtools.localstack_patches import apply_runtime_patches

    apply_runtime_patches()
    from localstack.runtime.main import main

    main()


if __name__ == "__main__":
    if sys.version_info < (3, 12):
        sys.exit("LocalStack needs Python 3.12+: run this module with the interpreter of .venv-localstack")
    _main()
