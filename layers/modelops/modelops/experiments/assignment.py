"""A/B experiments: sticky assignment of requests to variant A (champion) or B (challenger).

The split lives in a Powertools feature-flags document (AWS AppConfig in production, a JSON file
locally), so it changes without redeploying code:

    {"challenger": {"default": false, "rules": {"entity bucket in challenger range": {
        "when_match": true,
        "conditions": [{"action": "MODULO_RANGE", "key": "bucket",
                        "value": {"BASE": 10000, "START": 0, "END": 999}}]}}}}      # 10 % to B

Each request's context is {"bucket": <64-bit hash of salt + entity id>}; Powertools computes
bucket % BASE and matches it against the range, so one entity id always lands on the same side.
Requests without an id get a random bucket, which puts them on B with the same probability.

The experiment is on only when the function has a challenger model pinned
(MODELOPS_CHALLENGER_VERSION). Without one, `Experiment.from_env()` returns None and the predict
path never touches feature flags. With one, Powertools caches the flag document for
MODELOPS_AB_CACHE_SECONDS (default 30) seconds, so most requests cost one hash and one rule match.

Environment:
    MODELOPS_CHALLENGER_VERSION   challenger model version; unset or empty = no experiment
    MODELOPS_AB_ID_HEADER         request header carrying the entity id (default x-entity-id)
    MODELOPS_AB_ID_FIELD          JSON body field carrying the entity id (default entity_id)
    MODELOPS_AB_CONFIG_FILE       local flag document (used instead of AppConfig when set)
    MODELOPS_APPCONFIG_APPLICATION / _ENVIRONMENT / _PROFILE   where the flag document lives
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core import env as settings
from ..core.errors import InputError, ModelOpsError

FLAG = "challenger"
BUCKET_KEY = "bucket"
BUCKETS = 10_000  # split granularity: 0.01 percentage points
CHAMPION_VARIANT = "A"
CHALLENGER_VARIANT = "B"
DEFAULT_ID_HEADER = "x-entity-id"
DEFAULT_ID_FIELD = "entity_id"
DEFAULT_CACHE_SECONDS = 30
MAX_ID_LENGTH = 256

logger = logging.getLogger(__name__)


def entity_bucket(entity_id: str, salt: str = "") -> int:
    """A stable 64-bit number for an entity id (the same on every machine and Python run)."""
    digest = hashlib.blake2b(f"{salt}\x00{entity_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def flag_document(challenger_percent: float) -> dict[str, Any]:
    """The feature-flags document that sends challenger_percent % of entities to B."""
    if not 0 <= challenger_percent <= 100:
        raise InputError(f"challenger share must be between 0 and 100 percent, got {challenger_percent}", field="split")
    buckets = round(challenger_percent * BUCKETS / 100)
    if buckets == 0:
        return {FLAG: {"default": False}}
    if buckets >= BUCKETS:
        return {FLAG: {"default": True}}
    return {
        FLAG: {
            "default": False,
            "rules": {
                "entity bucket in challenger range": {
                    "when_match": True,
                    "conditions": [
                        {
                            "action": "MODULO_RANGE",
                            "key": BUCKET_KEY,
                            "value": {"BASE": BUCKETS, "START": 0, "END": buckets - 1},
                        }
                    ],
                }
            },
        }
    }


def challenger_percent(document: Mapping[str, Any]) -> float:
    """Read the share back out of a flag document written by flag_document()."""
    flag = document.get(FLAG) or {}
    if not flag.get("rules"):
        return 100.0 if flag.get("default") else 0.0
    (rule,) = flag["rules"].values()
    value = rule["conditions"][0]["value"]
    return (value["END"] - value["START"] + 1) * 100 / value["BASE"]


class FileStore:
    """A Powertools store (same interface as StoreProvider) that reads the flag document from a local JSON file.

    Re-reads only when the file's mtime changes, and returns the same dict object otherwise so
    Powertools skips re-validating it (the same contract as its AppConfig cache)."""

    def __init__(self, path: str):
        self.path = path
        self._mtime: float | None = None
        self._document: dict[str, Any] = {}

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        import json

        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            self._mtime, self._document = None, {}
            return self._document
        if mtime != self._mtime:
            with open(self.path, "rb") as fh:
                self._document = json.load(fh)
            self._mtime = mtime
        return self._document

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


def entity_id_from(
    headers: Mapping[str, str] | None,
    body: Mapping[str, Any] | None,
    id_header: str = DEFAULT_ID_HEADER,
    id_field: str = DEFAULT_ID_FIELD,
) -> str | None:
    """The entity id a request names: the id_header header (case-insensitive), else the body's id_field."""
    id_header = id_header.lower()
    value: Any = None
    if headers:
        value = headers.get(id_header)
        if value is None:
            for k, v in headers.items():
                if k.lower() == id_header:
                    value = v
                    break
    if value is None and body is not None and isinstance(body, Mapping):
        value = body.get(id_field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"'{id_field}' must be a string or an integer", field=id_field)
    value = str(value)
    if not value or len(value) > MAX_ID_LENGTH:
        raise InputError(f"'{id_field}' must be 1 to {MAX_ID_LENGTH} characters", field=id_field)
    return value


@dataclass(frozen=True)
class Assignment:
    variant: str
    model_version: str
    entity_id: str | None


class Experiment:
    """Assigns each request to A or B. Build it once per process (at init), call assign() per request."""

    def __init__(
        self,
        store: Any,
        champion_version: str,
        challenger_version: str,
        *,
        id_header: str = DEFAULT_ID_HEADER,
        id_field: str = DEFAULT_ID_FIELD,
        rand: Callable[[], int] | None = None,
    ):
        from aws_lambda_powertools.utilities.feature_flags import FeatureFlags

        self.flags = FeatureFlags(store=store)
        self.champion_version = champion_version
        self.challenger_version = challenger_version
        self.id_header = id_header.lower()
        self.id_field = id_field
        # The challenger version salts the hash: a new challenger reshuffles who is in B.
        self.salt = challenger_version
        self._rand = rand or (lambda: random.getrandbits(64))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, store: Any = None) -> Experiment | None:
        env = settings.mapping(env)
        challenger = settings.text("MODELOPS_CHALLENGER_VERSION", env=env)
        if not challenger:
            return None
        champion = settings.text("MODELOPS_MODEL_VERSION", env=env)
        if store is None:
            store = store_from_env(env)
        return cls(
            store,
            champion,
            challenger,
            id_header=settings.text("MODELOPS_AB_ID_HEADER", env=env) or DEFAULT_ID_HEADER,
            id_field=settings.text("MODELOPS_AB_ID_FIELD", env=env) or DEFAULT_ID_FIELD,
        )

    def entity_id(self, headers: Mapping[str, str] | None, body: Mapping[str, Any] | None) -> str | None:
        """The entity id from the configured header (case-insensitive) or else the body field."""
        return entity_id_from(headers, body, self.id_header, self.id_field)

    def variant_for(self, entity_id: str | None) -> str:
        bucket = entity_bucket(entity_id, self.salt) if entity_id is not None else self._rand()
        try:
            in_b = self.flags.evaluate(name=FLAG, context={BUCKET_KEY: bucket}, default=False)
        except Exception:  # an unreadable flag document must never fail a prediction: serve the champion
            logger.warning("A/B flag evaluation failed; serving the champion", exc_info=True)
            return CHAMPION_VARIANT
        return CHALLENGER_VARIANT if in_b else CHAMPION_VARIANT

    def assign(self, headers: Mapping[str, str] | None = None, body: Mapping[str, Any] | None = None) -> Assignment:
        entity = self.entity_id(headers, body)
        variant = self.variant_for(entity)
        version = self.challenger_version if variant == CHALLENGER_VARIANT else self.champion_version
        return Assignment(variant, version, entity)


def store_from_env(env: Mapping[str, str]) -> Any:
    path = settings.text("MODELOPS_AB_CONFIG_FILE", env=env)
    if path:
        return FileStore(path)
    app = settings.text("MODELOPS_APPCONFIG_APPLICATION", env=env)
    environment = settings.text("MODELOPS_APPCONFIG_ENVIRONMENT", env=env)
    profile = settings.text("MODELOPS_APPCONFIG_PROFILE", env=env)
    if not (app and environment and profile):
        raise ModelOpsError(
            "an A/B challenger is set but no flag store is configured: set MODELOPS_APPCONFIG_APPLICATION, "
            "MODELOPS_APPCONFIG_ENVIRONMENT and MODELOPS_APPCONFIG_PROFILE (or MODELOPS_AB_CONFIG_FILE)"
        )
    from aws_lambda_powertools.utilities.feature_flags import AppConfigStore

    max_age = settings.integer("MODELOPS_AB_CACHE_SECONDS", DEFAULT_CACHE_SECONDS, minimum=0, env=env)
    return AppConfigStore(environment=environment, application=app, name=profile, max_age=max_age)
