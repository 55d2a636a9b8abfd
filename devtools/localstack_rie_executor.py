"""A LocalStack Lambda runtime executor that runs each execution environment as a local process under the
Lambda Runtime Interface Emulator (the aws-sam-cli wheel's aws-lambda-rie-<arch>), instead of a Docker container.

LocalStack (localstack-core, pinned in requirements-localstack.txt) picks its executor by name with
LAMBDA_RUNTIME_EXECUTOR from the plux entry point group ``localstack.lambda.runtime_executor``; its only
built-in one is "docker". This module is the "rie" executor, registered by the entry point in
devtools/localstack_plugins/ (put on LocalStack's PYTHONPATH by devtools.localstack_launch, so nothing is
installed into LocalStack's virtualenv). Loaded inside the LocalStack process: standard library,
devtools.processes and LocalStack only.

How it differs from the Docker executor:
- Invocations. LocalStack's own init binary (its fork of the emulator, inside the container) takes
  ``POST /invoke`` and posts the result back to ``/_localstack_lambda/<executor>/invocations/<id>/response``.
  The plain emulator has neither; it answers ``POST /2015-03-31/functions/function/invocations`` synchronously,
  so ``invoke`` posts the payload there and builds LocalStack's InvocationResult from the answer. The
  emulator chooses its own request id, so the handler's ``context.aws_request_id`` differs from LocalStack's.
- Paths. Code and layers are the archives LocalStack stores, unzipped by LocalStack itself; PYTHONPATH is the
  code directory, then each layer's ``python/`` (Lambda's /var/task and /opt/python). LAMBDA_TASK_ROOT is the
  code directory; nothing is at /opt.
- Interpreter. MODELOPS_RIE_PYTHON, a host CPython with awslambdaric and boto3 (what the Lambda runtime
  provides). Layers must be built for the host's architecture.
- Isolation. None beyond a process: the function shares the host's file system and network.

Settings (environment of the LocalStack process): MODELOPS_RIE_BINARY (the emulator), MODELOPS_RIE_PYTHON,
MODELOPS_RIE_LOG_DIR (one log per execution environment; default: LocalStack's FILESYSTEM_ROOT).
"""

from __future__ import annotations

import json
import os
from email.message import Message
from pathlib import Path
from typing import Any

from localstack import config
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor

from devtools import processes, rie_invoke

NAME = "rie"
# The host settings a runtime needs to start; everything else comes from LocalStack (the Lambda environment).
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR")


def _setting(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise LambdaRuntimeException(f"{name} is not set; the {NAME} Lambda executor needs it")
    return Path(value)


class RieRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.proc: Any = None
        self.port = 0
        log_dir = Path(os.environ.get("MODELOPS_RIE_LOG_DIR") or config.dirs.tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / f"lambda-{function_version.id.function_name}-{id}.log"
        self.log_offset = 0

    def python_path(self) -> list[str]:
        config_ = self.function_version.config
        paths = [str(config_.code.get_unzipped_code_location())]
        for layer in config_.layers:
            paths.append(str(layer.code.get_unzipped_code_location() / "python"))
        return paths

    def start(self, env_vars: dict[str, str]) -> None:
        code_dir = str(self.function_version.config.code.get_unzipped_code_location())
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update({k: str(v) for k, v in env_vars.items()})
        env.update(
            {
                "LAMBDA_TASK_ROOT": code_dir,
                "PYTHONPATH": os.pathsep.join(self.python_path()),
                "HOME": str(self.log.parent),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.port = processes.free_port()
        argv = [
            str(_setting("MODELOPS_RIE_BINARY")),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{processes.free_port()}",  # each environment needs its own (default 9001)
            str(_setting("MODELOPS_RIE_PYTHON")),
            "-m",
            "awslambdaric",
            env_vars.get("_HANDLER") or self.function_version.config.handler,
        ]
        self.proc = processes.spawn(argv, env=env, cwd=code_dir, log=self.log)
        processes.wait_for_port(self.port, self.proc, timeout=15, what=f"emulator {self.id}")

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)  # the emulator and its runtime: one process group
            self.proc = None

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"  # the runtime runs on the host, where LocalStack listens on loopback

    def get_runtime_endpoint(self) -> str:
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        body, headers = rie_invoke.invoke(
            self.port,
            payload["payload"].encode(),
            timeout=int(self.function_version.config.timeout) + 30,  # the emulator enforces the function timeout
            what=f"emulator {self.id}",
            error=LambdaRuntimeException,
            headers={"Content-Type": "application/json", "X-Amzn-Trace-Id": payload.get("trace-id", "")},
        )
        return InvocationResult(payload["invoke-id"], body, is_error=_is_error(headers, body), logs=self._new_logs())

    def _new_logs(self) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_offset)
                data = f.read()
        except OSError:
            return ""
        self.log_offset += len(data)
        return data.decode(errors="replace")

    def get_logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        config_ = function_version.config
        if not config_.code:
            raise LambdaRuntimeException(f"{NAME} executor runs zip functions only")
        config_.code.prepare_for_execution()  # unzip into LocalStack's code cache
        for layer in config_.layers:
            layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # the unzipped code belongs to LocalStack's code cache, which removes it

    @classmethod
    def validate_environment(cls) -> bool:
        for name in ("MODELOPS_RIE_BINARY", "MODELOPS_RIE_PYTHON"):
            if not os.access(os.environ.get(name) or "/nonexistent", os.X_OK):
                return False
        return True


def _is_error(headers: Message, body: bytes) -> bool:
    """The handler raised: the emulator answers 200 with Lambda's error object (errorMessage, errorType)."""
    if headers.get("X-Amz-Function-Error"):
        return True
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and set(answer) >= {"errorMessage", "errorType"}


class RieRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = NAME

    def load(self, *args: Any, **kwargs: Any) -> type[RieRuntimeExecutor]:
        return RieRuntimeExecutor
