"""Fakes shared by the lifecycle tests: labelled data, a deployer, a notifier, a settable clock."""

from __future__ import annotations

from typing import Any

from modelops.capture.labelled import LabelledRow
from modelops.ports import Rollout

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = NOW):
        self.t = t

    def __call__(self) -> float:
        return self.t


class ListLabelled:
    def __init__(self, records: list[LabelledRow]):
        self.records = records
        self.calls = 0

    def labelled(self, name: str, since: float, until: float) -> list[LabelledRow]:
        self.calls += 1
        return [r for r in self.records if since < r.at <= until]


class FakeDeployer:
    """Stands in for the stack-update rollout (moto cannot run CloudFormation change sets or CodeDeploy); records
    what it was asked to roll out."""

    mechanism = "fake"

    def __init__(self, live: str | None = None):
        self.started: list[str] = []
        self.live = live
        self.running: str | None = None
        self.fail: Exception | None = None
        self.refuse: Exception | None = None

    def in_flight(self) -> str | None:
        return self.running

    def check(self) -> None:
        if self.refuse:
            raise self.refuse

    def start(self, model_version: str, description: str) -> Rollout:
        if self.fail:
            raise self.fail
        self.started.append(model_version)
        return Rollout(f"d-{len(self.started)}", model_version, self.mechanism, previous_version="1")

    def live_model_version(self) -> str | None:
        return self.live


class Notes:
    def __init__(self):
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        self.messages.append((subject, message))


class MemoryPin:
    def __init__(self, value: str | None = None):
        self.value = value

    def get(self) -> str | None:
        return self.value

    def put(self, version: str) -> None:
        self.value = version


class SerializedPuts:
    """S3 applies a conditional PUT atomically; moto checks the condition and stores without a lock.
    Serializing PUTs restores S3's behaviour for tests that race threads (each PUT still carries the
    condition its thread read)."""

    def __init__(self, s3: Any):
        import threading

        self._s3, self._lock = s3, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def put_object(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._s3.put_object(**kwargs)


TRUSTED_URI = "s3://modelops-test/training-data/trusted"  # curated trusted rows (modelops.model.trusted)


def put_trusted_rows(s3: Any, rows: int = 150, factor: float = 1.3) -> None:
    """The data owners' confirmed rows from the new device (the shift devtools.lifecycle_sim simulates), under the
    training data prefix where only they write."""
    from modelops.model.dataset import load_builtin

    from devtools.lifecycle_sim import trusted_rows_csv

    body = trusted_rows_csv(load_builtin("breast_cancer"), rows, factor)
    s3.put_object(Bucket="modelops-test", Key="training-data/trusted/device-b.csv", Body=body)
