"""Orchestration of a batch run: prepare (skip / wait / plan), score parts, commit.

The same steps run inside one invocation (small inputs, the CLI) or as Step Functions states
(prepare -> Distributed Map of score-part -> commit) for inputs above the inline threshold.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson

from ..model.artifact import LoadedModel, Manifest
from ..model.versioning import utc_now_iso
from ..registry import CHAMPION, Registry
from . import deps, plan
from .commit import commit
from .config import BatchConfig
from .dates import logical_run_date
from .lease import DateLease, LeaseBusy, LeaseLost
from .parquet import describe_row_groups
from .part import score_part
from .readers import Chunk
from .scoring import Scorer
from .store import ObjectStore, open_store

_MODELS: dict[tuple[str, str, str], LoadedModel] = {}  # warm invocations reuse the loaded model


def skipped_key(config: BatchConfig, run_date: str, attempt: str) -> str:
    return config.attempt_folder(run_date, attempt) + "skipped.json"


class BatchRunner:
    def __init__(self, config: BatchConfig, store: ObjectStore | None = None, registry: Registry | None = None):
        self.config = config
        self.store = store or open_store(config.bucket)
        self.registry = registry or Registry(config.registry or "", s3=getattr(self.store, "s3", None))
        # optional observer of each chunk once scored (tests, progress): its ids and counts; the feature matrix is
        # dropped by then
        self.on_chunk: Callable[[Chunk], None] | None = None
        self.clock: Callable[[], float] = time.time  # the lease's clock

    def lease(self, run_date: str) -> DateLease:
        return DateLease(self.store, self.config.lease_key(run_date), run_date, self.config.lease_seconds, self.clock)

    def release(self, run: dict[str, Any]) -> bool:
        """Give the date back (after success or failure); False when this attempt no longer held it."""
        return self.lease(run["run_date"]).release(run["attempt"])

    # ---- model ------------------------------------------------------------------------
    def resolve_version(self) -> str:
        name = self.config.model_name or ""
        if self.config.model_version:
            return self.registry.resolve_version(name, self.config.model_version)
        return self.registry.resolve(name, CHAMPION)

    def scorer(self, model: dict[str, str]) -> Scorer:
        key = (self.registry.uri, model["name"], model["version"])
        if key not in _MODELS:
            _MODELS.clear()
            _MODELS[key] = self.registry.load(model["name"], model["version"])
        return Scorer(_MODELS[key])

    def model_manifest(self, model: dict[str, str]) -> Manifest:
        loaded = _MODELS.get((self.registry.uri, model["name"], model["version"]))
        return loaded.manifest if loaded else self.registry.manifest(model["name"], model["version"])

    # ---- steps ------------------------------------------------------------------------
    def default_date(self, now: dt.datetime | None = None) -> str:
        return logical_run_date(now or dt.datetime.now(dt.UTC), self.config.timezone)

    def prepare(self, run_date: str, force: bool = False, split: bool | None = None) -> dict[str, Any]:
        """Skip, wait, or plan the run. split: cut large objects into byte-range parts; by default only
        when the run fans out, since one process scores its parts one after the other anyway."""
        config, store = self.config, self.store
        # a missing bucket is an error, never a dependency to wait for (listed under the input folder, which
        # the batch role may list)
        store.check(config.input_folder(run_date))
        manifest_key = config.manifest_key(run_date)
        if not force and store.exists(manifest_key):
            return {
                "status": "skipped",
                "run_date": run_date,
                "reason": f"already succeeded ({store.uri(manifest_key)}); use force to rerun",
            }
        readiness = deps.check(config, store, run_date)
        if not readiness.ready:
            return {"status": "waiting", "run_date": run_date, "waiting_for": readiness.waiting_for}
        attempt = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)
        lease = self.lease(run_date)
        try:
            lease.acquire(attempt)
        except LeaseBusy as busy:  # one run per date: this one waits (state machine) or stops (CLI)
            return {"status": "waiting", "run_date": run_date, "waiting_for": [str(busy)], "lease": busy.holder}
        try:
            if not force and store.exists(manifest_key):  # committed while this run checked its dependencies
                lease.release(attempt)
                return {
                    "status": "skipped",
                    "run_date": run_date,
                    "reason": f"already succeeded ({store.uri(manifest_key)}); use force to rerun",
                }
            return self._plan(run_date, attempt, force, split)
        except BaseException:
            lease.release(attempt)
            raise

    def _plan(self, run_date: str, attempt: str, force: bool, split: bool | None) -> dict[str, Any]:
        config, store = self.config, self.store
        folder = config.input_folder(run_date)
        objects, skipped = plan.without_empty(
            plan.input_objects(list(store.list(folder)), store.uri(folder)), store.uri(folder)
        )
        model = {"name": config.model_name or "", "version": self.resolve_version()}
        mode = plan.choose_mode(objects, config.inline_max_bytes)
        if split is None:
            split = mode == plan.FANOUT
        # without id columns rows are named by absolute line numbers, which only a whole object knows (a
        # Parquet footer gives every row group's first row, so Parquet objects are cut into row groups anyway)
        parts = plan.plan_parts(
            objects,
            config.part_bytes if split and config.id_columns else None,
            row_group_bytes=config.part_bytes if split else None,
            row_groups=lambda o: describe_row_groups(store, o.key, o.etag, o.size),
        )
        parts_key = config.attempt_folder(run_date, attempt) + "parts.json"
        store.put(parts_key, orjson.dumps(parts))
        if skipped:  # in the work area, not in the run: the state machine's payloads stay small
            store.put(skipped_key(config, run_date, attempt), orjson.dumps(skipped))
        run = {
            "run_date": run_date,
            "attempt": attempt,
            "force": force,
            "model": model,
            "bucket": store.bucket,
            "parts_key": parts_key,
            "parts": len(parts),
            "skipped": len(skipped),
            "started_at": utc_now_iso(),
            "started": time.time(),
        }
        return {"status": "ready", "mode": mode, "run": run}

    def parts(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        return orjson.loads(self.store.get(run["parts_key"])[0])

    def score_part(self, run: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
        """Renews the lease when the part starts and every third of the lease while it is scored; a part of a
        run whose lease was taken over fails with LeaseLost."""
        model = run["model"]
        lease = self.lease(run["run_date"])
        lease.renew(run["attempt"])
        renewed = [self.clock()]

        def observe(chunk: Chunk) -> None:
            if self.clock() - renewed[0] > self.config.lease_seconds / 3:
                lease.renew(run["attempt"])
                renewed[0] = self.clock()
            if self.on_chunk is not None:
                self.on_chunk(chunk)

        manifest = self.model_manifest(model)
        try:
            stats = score_part(self.config, self.store, run, part, manifest, lambda: self.scorer(model), observe)
        except LeaseLost:
            raise
        except Exception as exc:  # e.g. its open upload aborted by the run that took the date over
            if not lease.holds(run["attempt"]):
                raise LeaseLost(f"run {run['run_date']} attempt {run['attempt']} lost its lease: {exc}") from exc
            raise
        return {k: stats[k] for k in ("index", "rows_read", "rows_scored", "rows_rejected", "chunks", "seconds")}

    def commit(self, run: dict[str, Any]) -> dict[str, Any]:
        """Publish the run if it still holds its lease (checked before any output changes and again right
        before the manifest), then release the lease, also when the commit fails."""
        lease = self.lease(run["run_date"])
        try:
            try:
                lease.renew(run["attempt"])
            except LeaseLost:
                done = self._committed(run)  # a retried commit whose first try got through
                if done is not None:
                    return done
                raise
            model = self.registry.manifest(run["model"]["name"], run["model"]["version"])
            skipped = []
            if run.get("skipped"):
                skipped = orjson.loads(self.store.get(skipped_key(self.config, run["run_date"], run["attempt"]))[0])
            return commit(
                self.config,
                self.store,
                run,
                self.parts(run),
                model.baseline,
                list(model.schema.names),
                run["started_at"],
                run["started"],
                skipped,
                verify_lease=lambda: lease.renew(run["attempt"]),
            )
        finally:
            lease.release(run["attempt"])

    def _committed(self, run: dict[str, Any]) -> dict[str, Any] | None:
        key = self.config.manifest_key(run["run_date"])
        if not self.store.exists(key):
            return None
        manifest: dict[str, Any] = orjson.loads(self.store.get(key)[0])
        return manifest if manifest.get("attempt") == run["attempt"] else None

    def execute(self, run: dict[str, Any]) -> dict[str, Any]:
        try:
            for part in self.parts(run):
                self.score_part(run, part)
        except BaseException:
            self.release(run)
            raise
        return self.commit(run)

    def run(self, run_date: str, force: bool = False) -> dict[str, Any]:
        """Prepare and score in this process, whatever the input size. Returns status + manifest."""
        prepared = self.prepare(run_date, force, split=False)
        if prepared["status"] != "ready":
            return prepared
        manifest = self.execute(prepared["run"])
        return {"status": "succeeded", "run_date": run_date, "manifest": manifest}

    def status(self, run_date: str) -> dict[str, Any]:
        config, store = self.config, self.store
        store.check(config.input_folder(run_date))
        key = config.manifest_key(run_date)
        if store.exists(key):
            return {"status": "succeeded", "run_date": run_date, "manifest": orjson.loads(store.get(key)[0])}
        reasons = []
        attempts = {
            o.key.split("/_attempts/")[1].split("/")[0]
            for o in store.list(config.output_folder(run_date) + "_attempts/")
        }
        if attempts:
            reasons.append(f"uncommitted attempt(s) {', '.join(sorted(attempts))}: running, or failed before commit")
        lease = self.lease(run_date)
        held, _ = lease.read()
        if held.get("attempt") and self.clock() < float(held.get("expires_at", 0)):
            reasons.append(lease.busy_message(held))
        readiness = deps.check(config, store, run_date)
        if not readiness.ready:
            reasons.append(readiness.message())
        folder = config.input_folder(run_date)
        data = [o for o in store.list(folder) if not plan.is_marker(o.key)]
        if not data:
            reasons.append(f"no input objects under {store.uri(folder)}")
        if not reasons:
            reasons.append("inputs are ready but no run has committed yet")
        return {"status": "pending", "run_date": run_date, "manifest_key": store.uri(key), "reasons": reasons}


def scheduled_step(
    runner: BatchRunner, run_date: str, force: bool, attempt: int, max_attempts: int, wait_seconds: int
) -> dict[str, Any]:
    """One scheduled invocation: small inputs are scored here; large ones are handed to the fan-out.

    When dependencies are not ready the answer says "waiting" with the next attempt number; the
    state machine waits `wait_seconds` and asks again, up to `max_attempts`, then fails visibly.
    """
    prepared = runner.prepare(run_date, force)
    status = prepared["status"]
    if status == "waiting":
        base = {
            "run_date": run_date,
            "force": force,
            "waiting_for": prepared["waiting_for"],
            "max_attempts": max_attempts,
            "wait_seconds": wait_seconds,
        }
        if attempt >= max_attempts:
            return {
                "status": "timed_out",
                "attempt": attempt,
                **base,
                "error": f"run {run_date}: dependencies not ready after {attempt} attempts: "
                + "; ".join(prepared["waiting_for"]),
            }
        return {"status": "waiting", "attempt": attempt + 1, **base}
    if status == "skipped":
        return prepared
    if prepared["mode"] == plan.FANOUT:
        # the state machine's Distributed Map reads its MaxConcurrency from here (MaxConcurrencyPath)
        return {"status": "fanout", "run": prepared["run"], "max_concurrency": runner.config.max_concurrency}
    manifest = runner.execute(prepared["run"])
    return {"status": "succeeded", "run_date": run_date, "manifest": manifest}
