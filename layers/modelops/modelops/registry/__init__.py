"""The S3 model registry.

Layout under s3://bucket/prefix, or under a local directory (modelops.adapters.objectstore):
    models/<name>/<version>/model.joblib, golden.json, manifest.json   (manifest written last = registered)
                                   (+ training.csv: an imported model's training sample)
                                   (+ evaluation.csv: the trusted evaluation set, modelops.model.trusted)
    aliases/<name>/<alias>.json        current version + stack of previous versions
    history/<name>/<timestamp>-<id>.json   append-only audit events (alias changes, decisions)

Every write that must not race is a conditional write: a version's files use If-None-Match
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

from ..adapters.objectstore import open_location, swap_state
from ..core.errors import ConflictError, ModelOpsError, NotFoundError
from ..core.names import check_model_name
from ..model.artifact import (
    EVALUATION_FILE,
    GOLDEN_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    SIGNATURE_FILE,
    TRAINING_DATA_FILE,
    LoadedModel,
    Manifest,
    load_from_bytes,
)
from ..model.signing import KmsSigner, signer_from_env
from ..model.versioning import utc_now_iso
from ..ports import ObjectStore

CHAMPION = "champion"
CHALLENGER = "challenger"
CANDIDATE = "candidate"  # the version a retrain rollout is moving to; the champion again when none is in flight
PENDING = "pending"  # a retrain winner waiting for `modelops models approve` (manual approval); unset when none
ANY = object()  # set_alias(expected=ANY): no expectation about the current value
FROM_ENV: Any = object()  # Registry(signer=FROM_ENV): the signing key named by MODELOPS_SIGNING_KEY, if any


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
    def __init__(
        self, uri: str, s3: Any = None, *, store: ObjectStore | None = None, signer: KmsSigner | None = FROM_ENV
    ):
        """uri: s3://bucket/prefix, or a local directory (a path or file:// URI). s3: the boto3 client to use for
        S3; store: an ObjectStore to use instead (its keys are then under the uri's prefix as given). signer: the key
        that signs registered manifests and must have signed every manifest loaded (modelops.model.signing); by default
        the one MODELOPS_SIGNING_KEY names, or none."""
        self.uri = uri.rstrip("/") or uri
        opened, self.prefix = open_location(self.uri, s3)
        self.store: ObjectStore = store if store is not None else opened
        self.signer: KmsSigner | None = signer_from_env() if signer is FROM_ENV else signer

    @property
    def bucket(self) -> str:
        return self.store.bucket

    @property
    def s3(self) -> Any:
        """The boto3 client of an S3 registry."""
        return getattr(self.store, "s3", None)

    @s3.setter
    def s3(self, value: Any) -> None:
        self.store.s3 = value  # type: ignore[attr-defined]

    # ---- keys ------------------------------------------------------------------------
    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    _key = key

    def version_key(self, name: str, version: str, file: str = "") -> str:
        check_model_name(name)
        return self.key("models", name, version, file)

    # ---- storage ----------------------------------------------------------------------
    def _get(self, key: str, what: str) -> tuple[bytes, str]:
        try:
            return self.store.get(key)
        except NotFoundError:
            raise NotFoundError(f"{what}: not found") from None

    def _put_new(self, key: str, body: bytes, what: str, content_type: str = "application/json") -> None:
        try:
            self.store.put(key, body, content_type=content_type, if_none_match=True)
        except ConflictError:
            raise ConflictError(f"{what}: {key} already exists") from None

    def _keys(self, prefix: str) -> list[str]:
        return [o.key for o in self.store.list(prefix)]

    def check_bucket(self, name: str | None = None) -> None:
        """The registry's bucket or directory exists (listing under the model's versions, when named)."""
        try:
            self.store.check(self.key("models", name) + "/" if name else self.key() + "/" if self.prefix else "")
        except NotFoundError as exc:
            raise NotFoundError(f"registry {self.uri}: {exc}") from None

    # ---- versions ---------------------------------------------------------------------
    def register(self, directory: str | Path) -> Manifest:
        """Upload an artifact directory. The manifest goes last, so a half-uploaded version is never listed."""
        directory = Path(directory)
        manifest = Manifest.from_json((directory / MANIFEST_FILE).read_bytes())
        check_model_name(manifest.name)
        self.check_bucket(manifest.name)
        what = f"registering {manifest.name}/{manifest.version}"
        manifest_bytes = manifest.to_json()
        try:
            for file in (MODEL_FILE, GOLDEN_FILE, TRAINING_DATA_FILE, EVALUATION_FILE):
                if (directory / file).exists():
                    self._put_new(
                        self.version_key(manifest.name, manifest.version, file),
                        (directory / file).read_bytes(),
                        what,
                        "application/octet-stream",
                    )
            if self.signer is not None:  # before the manifest, so a listed version always has its signature
                self._put_new(
                    self.version_key(manifest.name, manifest.version, SIGNATURE_FILE),
                    self.signer.sign(manifest_bytes),
                    what,
                )
            self._put_new(self.version_key(manifest.name, manifest.version, MANIFEST_FILE), manifest_bytes, what)
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
        return sorted(self.store.folders(self.key("models") + "/"))

    def list_versions(self, name: str) -> list[str]:
        check_model_name(name)
        keys = self._keys(self.key("models", name) + "/")
        versions = sorted({k.split("/")[-2] for k in keys if k.endswith("/" + MANIFEST_FILE)})
        if not versions:
            raise NotFoundError(f"model '{name}' not found in {self.uri}")
        return versions

    def _manifest_bytes(self, name: str, version: str) -> bytes:
        try:
            body, _ = self._get(self.version_key(name, version, MANIFEST_FILE), f"{name}/{version}")
        except NotFoundError:
            raise NotFoundError(f"version '{version}' of model '{name}' not found in {self.uri}") from None
        return body

    def manifest(self, name: str, version_or_alias: str) -> Manifest:
        return Manifest.from_json(self._manifest_bytes(name, self.resolve_version(name, version_or_alias)))

    def _signature(self, name: str, version: str) -> bytes | None:
        try:
            return self._get(self.version_key(name, version, SIGNATURE_FILE), f"{name}/{version}")[0]
        except NotFoundError:
            return None

    def verified_manifest(self, name: str, version_or_alias: str) -> tuple[bytes, bytes | None]:
        """(manifest.json, signature.json) of a version, the signature checked when signatures are required: what
        must hold before the model file is unpickled."""
        version = self.resolve_version(name, version_or_alias)
        manifest = self._manifest_bytes(name, version)
        if self.signer is None:
            return manifest, None
        signature = self._signature(name, version)
        self.signer.verify(manifest, signature, f"model {name}/{version}")
        return manifest, signature

    def load(self, name: str, version_or_alias: str) -> LoadedModel:
        manifest_bytes, _ = self.verified_manifest(name, version_or_alias)
        manifest = Manifest.from_json(manifest_bytes)
        model_bytes, _ = self._get(self.version_key(name, manifest.version, MODEL_FILE), f"{name}/{manifest.version}")
        golden = None
        if manifest.golden:
            golden, _ = self._get(self.version_key(name, manifest.version, GOLDEN_FILE), f"{name}/{manifest.version}")
        return load_from_bytes(manifest_bytes, model_bytes, golden)

    def download(self, name: str, version_or_alias: str, directory: str | Path) -> Manifest:
        manifest_bytes, signature = self.verified_manifest(name, version_or_alias)
        manifest = Manifest.from_json(manifest_bytes)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for file in (MODEL_FILE, GOLDEN_FILE):  # what serving needs (the trusted set stays in the registry)
            if file == GOLDEN_FILE and not manifest.golden:
                continue
            body, _ = self._get(self.version_key(name, manifest.version, file), f"{name}/{manifest.version}")
            (directory / file).write_bytes(body)
        if signature is not None:
            (directory / SIGNATURE_FILE).write_bytes(signature)
        (directory / MANIFEST_FILE).write_bytes(manifest_bytes)
        return manifest

    # ---- aliases ----------------------------------------------------------------------
    def alias_key(self, name: str, alias: str) -> str:
        check_model_name(name)
        return self.key("aliases", name, f"{alias}.json")

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
        check_model_name(name)
        base = self.key("aliases", name) + "/"
        names = [k[len(base) : -len(".json")] for k in self._keys(base) if k.endswith(".json")]
        return {a: self.get_alias(name, a) for a in sorted(names)}

    def resolve(self, name: str, alias: str) -> str:
        state = self.get_alias(name, alias)
        if state.version is None:
            raise NotFoundError(f"model '{name}' has no '{alias}' alias in {self.uri}")
        return state.version

    def resolve_version(self, name: str, version_or_alias: str) -> str:
        if version_or_alias in (CHAMPION, CHALLENGER, CANDIDATE, PENDING) or not version_or_alias[:1].isdigit():
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
        try:
            swap_state(self.store, self.alias_key(name, alias), new.to_json(), current.etag)
        except ConflictError:
            raise ConflictError(f"{what}: another change to {name}@{alias} won the race; not changed") from None
        self.record(
            name,
            "rollback" if _rollback else "alias_set",
            {"alias": alias, "from": current.version, "to": version, "reason": reason, "trigger": trigger},
        )
        return new

    def clear_alias(
        self, name: str, alias: str, *, expected: Any = ANY, reason: str = "", trigger: str = "manual"
    ) -> None:
        """Unset an alias (its version becomes None; the file stays, so the history of values is kept), conditional
        on the ETag read and, with expected=<version>, on its current value."""
        current = self.get_alias(name, alias)
        if expected is not ANY and current.version != expected:
            raise ConflictError(
                f"alias {name}@{alias} is {current.version or 'unset'}, not {expected or 'unset'} as expected; not changed"
            )
        if current.version is None:
            return
        previous = [*current.previous, current.version][-50:]
        new = AliasState(alias, None, previous, utc_now_iso(), reason, trigger)
        try:
            swap_state(self.store, self.alias_key(name, alias), new.to_json(), current.etag)
        except ConflictError:
            raise ConflictError(f"clearing alias {name}@{alias}: another change won the race; not changed") from None
        self.record(
            name,
            "alias_cleared",
            {"alias": alias, "from": current.version, "to": None, "reason": reason, "trigger": trigger},
        )

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
        check_model_name(name)
        entry = {"at": utc_now_iso(), "model": name, "event": event, **detail}
        key = self.key("history", name, f"{time.time_ns():020d}-{secrets.token_hex(4)}.json")
        self._put_new(key, json.dumps(entry, default=str).encode(), f"recording {event} for {name}")
        return entry

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        check_model_name(name)
        keys = sorted(self._keys(self.key("history", name) + "/"))
        if limit:
            keys = keys[-limit:]
        return [json.loads(self._get(k, "history")[0]) for k in keys]


DEFAULT_LOCAL_REGISTRY = ".modelops/registry"  # used when no registry is given: everything works without AWS


def require_registry(uri: str | None) -> Registry:
    """The registry at uri, or the local default directory (created on first use) when none is given."""
    if not uri:
        Path(DEFAULT_LOCAL_REGISTRY).mkdir(parents=True, exist_ok=True)
        return Registry(DEFAULT_LOCAL_REGISTRY)
    return Registry(uri)
