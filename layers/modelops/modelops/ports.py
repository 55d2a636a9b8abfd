"""The ports: what the domain needs from the outside world, as Protocols (object storage, rollouts, the champion
pin, announcements). The adapters in modelops.adapters implement them for AWS and for a local directory; tests give
in-memory fakes."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol


@dataclass(frozen=True)
class StoredObject:
    key: str
    etag: str
    size: int


class ObjectStore(Protocol):
    bucket: str  # what messages name (an S3 bucket, or a directory)

    def uri(self, key: str = "") -> str: ...

    def check(self, prefix: str = "") -> None:
        """NotFoundError unless the bucket or directory exists (checked with a listing under prefix, which a
        policy that limits listings to some prefixes allows)."""

    def get(self, key: str) -> tuple[bytes, str]: ...

    def head(self, key: str) -> StoredObject | None: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]: ...

    def folders(self, prefix: str) -> builtins.list[str]:
        """The next path segment of every key under prefix (S3's common prefixes with delimiter '/')."""

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str: ...

    def delete(self, keys: builtins.list[str]) -> None: ...

    def open_range(self, key: str, etag: str, start: int, end: int | None = None) -> IO[bytes]: ...

    def create_upload(self, key: str, content_type: str) -> str: ...

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str: ...

    def complete_upload(self, key: str, upload_id: str, parts: builtins.list[dict[str, Any]]) -> None: ...

    def abort_upload(self, key: str, upload_id: str) -> None: ...

    def open_uploads(self, prefix: str) -> builtins.list[tuple[str, str]]:
        """(key, upload id) of every upload under prefix that is neither completed nor aborted."""


@dataclass
class Rollout:
    deployment_id: str
    model_version: str
    mechanism: str
    previous_version: str | None = None  # Lambda version `live` pointed at when the rollout started
    function_version: str | None = None  # the new Lambda version, when the mechanism knows it at start


class Deployer(Protocol):
    mechanism: str

    def in_flight(self) -> str | None:
        """Id of a rollout still running on the function, if any."""

    def check(self) -> None:
        """Raise ModelOpsError when a rollout could not be started (checked before a candidate is trained)."""

    def start(self, model_version: str, description: str) -> Rollout:
        """Start moving the `live` alias to a Lambda version pinned to model_version."""

    def live_model_version(self) -> str | None:
        """The model version the `live` alias serves (its primary version)."""


class ChampionPin(Protocol):
    def get(self) -> str | None: ...

    def put(self, version: str) -> None: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: dict[str, Any]) -> None: ...
