"""The S3 model registry.

Layout under s3://bucket/prefix:
    models/<name>/<version>/model.joblib, golden.json, manifest.json   (manifest written last = registered)
    aliases/<name>/<alias>.json        current version + stack of previous versions
    history/<name>/<timestamp>-<id>.json   append-only audit events (alias changes, decisions)

Every write that must not race is an S3 conditional write: a version's files use If-None-Match
(never overwritten) and alias updates use If-Match on the ETag that was read (of two concurrent
promotions exactly one wins).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifact import GOLDEN_FILE, MANIFEST_FILE, MODEL_FILE, LoadedModel, Manifest, load_from_bytes
from .aws import aws_errors, client, lost_conditional_write, parse_s3_uri, s3_get
from .errors import ConflictError, ModelOpsError, NotFoundError
from .versioning import utc_now_iso

CHAMPION = "champion"
CHALLENGER = "challenger"
CANDIDATE = "candidate"  # the version a retrain rollout is moving to; the champion again when none is in flight
ANY = object()  # set_alias(expected=ANY): no expectation about the current value


@dataclass
class AliasState:
    alias: str
    version: str | None
    previous: list[str] = field(default_factory=list)
    updated_at: str | None = None
    reason: str | None = None
    trigger: str | None = None
    etag: str | None = None

    def to_json(self) -> bytes:
        # A fresh revision id makes every write change the ETag, even a write that repeats the same
        # version, so a concurrent writer holding the old ETag always fails its If-Match.
        return json.dumps(
            {
                "alias": self.alias,
                "version": self.version,
                "previous": self.previous,
                "updated_at": self.updated_at,
                "reason": self.reason,
                "trigger": self.trigger,
                "revision": secrets.token_hex(8),
            }
        ).encode()


class Registry:
    def __init__(self, uri: str, s3: Any = None):
        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.s3 = s3 if s3 is not None else client("s3")

    # ---- keys ------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def version_key(self, name: str, version: str, file: str = "") -> str:
        return self._key("models", name, version, file)

    # ---- low-level S3 -----------------------------------------------------------------
    def _get(self, key: str, what: str) -> tuple[bytes, str]:
        obj = s3_get(self.s3, self.bucket, key, what)
        with aws_errors(what, self.bucket):
            return obj["Body"].read(), obj["ETag"]

    def _put_new(self, key: str, body: bytes, what: str, content_type: str = "application/json") -> None:
        with aws_errors(what, self.bucket):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*", ContentType=content_type)

    def _list(self, prefix: str, delimiter: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        out: list[dict[str, Any]] = []
        with aws_errors(f"listing {self.uri}", self.bucket):
            for page in self.s3.get_paginator("list_objects_v2").paginate(**kwargs):
                out.extend(page.get("CommonPrefixes", []) if delimiter else page.get("Contents", []))
        return out

    def check_bucket(self) -> None:
        try:
            with aws_errors(f"registry {self.uri}", self.bucket):
                self.s3.head_bucket(Bucket=self.bucket)
        except NotFoundError:  # HeadBucket answers a bare 404 without an error code
            raise NotFoundError(f"registry {self.uri}: bucket '{self.bucket}' does not exist") from None

    # ---- versions ---------------------------------------------------------------------
    def register(self, directory: str | Path) -> Manifest:
        """Upload an artifact directory. The manifest goes last, so a half-uploaded version is never listed."""
        directory = Path(directory)
        manifest = Manifest.from_json((directory / MANIFEST_FILE).read_bytes())
        self.check_bucket()
        what = f"registering {manifest.name}/{manifest.version}"
        try:
            for file in (MODEL_FILE, GOLDEN_FILE):
                if (directory / file).exists():
                    self._put_new(
                        self.version_key(manifest.name, manifest.version, file),
                        (directory / file).read_bytes(),
                        what,
                        "application/octet-stream",
                    )
            self._put_new(self.version_key(manifest.name, manifest.version, MANIFEST_FILE), manifest.to_json(), what)
        except ConflictError:
            raise ConflictError(
                f"{manifest.name}/{manifest.version} is already registered; versions are never overwritten"
            ) from None
        self.record(
            manifest.name,
            "registered",
            {"version": manifest.version, "metrics": manifest.metrics, "training_data": manifest.training_data},
        )
        return manifest

    def list_models(self) -> list[str]:
        base = self._key("models") + "/"
        return sorted(p["Prefix"][len(base) :].strip("/") for p in self._list(base, "/"))

    def list_versions(self, name: str) -> list[str]:
        objects = self._list(self._key("models", name) + "/")
        versions = sorted({o["Key"].split("/")[-2] for o in objects if o["Key"].endswith("/" + MANIFEST_FILE)})
        if not versions:
            raise NotFoundError(f"model '{name}' not found in {self.uri}")
        return versions

    def manifest(self, name: str, version_or_alias: str) -> Manifest:
        version = self.resolve_version(name, version_or_alias)
        try:
            body, _ = self._get(self.version_key(name, version, MANIFEST_FILE), f"{name}/{version}")
        except NotFoundError:
            raise NotFoundError(f"version '{version}' of model '{name}' not found in {self.uri}") from None
        return Manifest.from_json(body)

    def load(self, name: str, version_or_alias: str) -> LoadedModel:
        manifest = self.manifest(name, version_or_alias)
        model_bytes, _ = self._get(self.version_key(name, manifest.version, MODEL_FILE), f"{name}/{manifest.version}")
        golden = None
        if manifest.golden:
            golden, _ = self._get(self.version_key(name, manifest.version, GOLDEN_FILE), f"{name}/{manifest.version}")
        return load_from_bytes(manifest.to_json(), model_bytes, golden)

    def download(self, name: str, version_or_alias: str, directory: str | Path) -> Manifest:
        manifest = self.manifest(name, version_or_alias)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for file in (MODEL_FILE, GOLDEN_FILE):
            if file == GOLDEN_FILE and not manifest.golden:
                continue
            body, _ = self._get(self.version_key(name, manifest.version, file), f"{name}/{manifest.version}")
            (directory / file).write_bytes(body)
        (directory / MANIFEST_FILE).write_bytes(manifest.to_json())
        return manifest

    # ---- aliases ----------------------------------------------------------------------
    def alias_key(self, name: str, alias: str) -> str:
        return self._key("aliases", name, f"{alias}.json")

    def get_alias(self, name: str, alias: str) -> AliasState:
        try:
            body, etag = self._get(self.alias_key(name, alias), f"alias {name}@{alias}")
        except NotFoundError:
            return AliasState(alias=alias, version=None)
        data = json.loads(body)
        return AliasState(
            alias=alias,
            version=data.get("version"),
            previous=list(data.get("previous", [])),
            updated_at=data.get("updated_at"),
            reason=data.get("reason"),
            trigger=data.get("trigger"),
            etag=etag,
        )

    def aliases(self, name: str) -> dict[str, AliasState]:
        base = self._key("aliases", name) + "/"
        names = [o["Key"][len(base) : -len(".json")] for o in self._list(base) if o["Key"].endswith(".json")]
        return {a: self.get_alias(name, a) for a in sorted(names)}

    def resolve(self, name: str, alias: str) -> str:
        state = self.get_alias(name, alias)
        if state.version is None:
            raise NotFoundError(f"model '{name}' has no '{alias}' alias in {self.uri}")
        return state.version

    def resolve_version(self, name: str, version_or_alias: str) -> str:
        if version_or_alias in (CHAMPION, CHALLENGER, CANDIDATE) or not version_or_alias[:1].isdigit():
            return self.resolve(name, version_or_alias)
        return version_or_alias

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str,
        *,
        expected: Any = ANY,
        reason: str = "",
        trigger: str = "manual",
        _rollback: bool = False,
    ) -> AliasState:
        """Point alias at version. With expected=<version or None>, fail unless the alias currently has that
        value. The write is conditional on the ETag read, so concurrent writers cannot both win."""
        if not _rollback:
            self.manifest(name, version)  # the target must be a registered version
        current = self.get_alias(name, alias)
        if expected is not ANY and current.version != expected:
            raise ConflictError(
                f"alias {name}@{alias} is {current.version or 'unset'}, not {expected or 'unset'} as expected; not changed"
            )
        if _rollback:
            previous = current.previous[:-1]
        else:
            previous = (
                [*current.previous, current.version]
                if current.version and current.version != version
                else current.previous
            )
        new = AliasState(
            alias=alias,
            version=version,
            previous=previous[-50:],
            updated_at=utc_now_iso(),
            reason=reason,
            trigger=trigger,
        )
        what = f"setting alias {name}@{alias}"
        with aws_errors(what, self.bucket):
            condition = {"IfMatch": current.etag} if current.etag else {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self.alias_key(name, alias),
                    Body=new.to_json(),
                    ContentType="application/json",
                    **condition,
                )
            except Exception as exc:
                if lost_conditional_write(exc):
                    raise ConflictError(f"{what}: another change to {name}@{alias} won the race; not changed") from None
                raise
        self.record(
            name,
            "rollback" if _rollback else "alias_set",
            {"alias": alias, "from": current.version, "to": version, "reason": reason, "trigger": trigger},
        )
        return new

    def rollback(self, name: str, alias: str, *, reason: str = "", trigger: str = "manual") -> AliasState:
        current = self.get_alias(name, alias)
        if current.version is None:
            raise NotFoundError(f"model '{name}' has no '{alias}' alias to roll back")
        if not current.previous:
            raise ModelOpsError(f"alias {name}@{alias} has no previous version to roll back to")
        return self.set_alias(
            name,
            alias,
            current.previous[-1],
            expected=current.version,
            reason=reason or f"rollback from {current.version}",
            trigger=trigger,
            _rollback=True,
        )

    # ---- history ----------------------------------------------------------------------
    def record(self, name: str, event: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Append one audit event. Keys sort by time; If-None-Match keeps the log append-only."""
        entry = {"at": utc_now_iso(), "model": name, "event": event, **detail}
        key = self._key("history", name, f"{time.time_ns():020d}-{secrets.token_hex(4)}.json")
        self._put_new(key, json.dumps(entry, default=str).encode(), f"recording {event} for {name}")
        return entry

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        objects = sorted(self._list(self._key("history", name) + "/"), key=lambda o: o["Key"])
        if limit:
            objects = objects[-limit:]
        return [json.loads(self._get(o["Key"], "history")[0]) for o in objects]


def require_registry(uri: str | None) -> Registry:
    if not uri:
        raise ModelOpsError("no registry given: pass --registry s3://bucket/prefix or set MODELOPS_REGISTRY")
    return Registry(uri)
