"""The retrain decision: assemble data, train a candidate with the champion's recipe, compare both on
the same recent holdout, and roll the candidate out only when it is clearly better.

Stages (each one that fails leaves the champion alias, the SSM pin and the live Lambda alias untouched):
    lock        one run at a time (lock with expiry) and a cooldown between decisions
    guard       no rollout of the function may be in flight, and the stack must be able to take one
    champion    resolve the champion, its recipe and its trusted evaluation set (modelops.model.trusted)
    data        labelled predictions from the recent window (at most `max_records` of each kind, the newest)
    inspect     the window's labels must not look steered (modelops.retrain.labelshift): one writer's share, and how
                often the labels contradict the served predictions; otherwise the run is `paused`
    data        original training set + the recent labels; the newest part of the recent window is the recent
                holdout and is never trained on, and no row of the trusted set is trained on
    train       modelops.model.training.train with the champion's estimator, task and seed; for an imported model
                (modelops.register), sklearn.base.clone of the champion refitted on the same data
    evaluate    candidate and champion on the trusted set and on the recent holdout
    decide      on the trusted set the candidate must beat the champion by `margin` on the primary metric and
                pass every floor; on the recent holdout it may not lose by more than `recent_tolerance`. A champion
                without a trusted set is compared on the recent holdout only, and a winner then needs approval
    register    only a winning candidate is registered; it keeps the champion's trusted set (evaluation.csv)
    approval    approval "manual" (or no trusted set): the `pending` alias names the winner and nothing rolls out
                until `modelops approve` (modelops.retrain.approval); a newer winner replaces an older pending one
    deploy      the candidate alias names it, and the stack is updated to serve it (modelops.rollout.deploy): CloudFormation
                publishes a Lambda version pinned to it and CodeDeploy moves `live` to it through the canary
The champion alias and the SSM pin move only in `finalize`, after the stack update succeeds.
Every run writes one `retrain_decision` (or `retrain_paused` / `retrain_failed` / `retrain_skipped`) event to the registry
history with the trigger, the data used, the metrics and the decision, and announces it. A dry run decides
the same way but writes nothing: no lock, no history, no announcement.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from ..adapters.aws import aws_errors, parse_s3_uri
from ..adapters.objectstore import ObjectStore, S3ObjectStore
from ..capture.labelled import LabelledRow, read_window
from ..capture.partitions import DEFAULT_MAX_RECORDS
from ..core.errors import ConflictError, ModelOpsError, NotFoundError
from ..model import signature, training, trusted
from ..model.artifact import CLASSIFICATION, REGRESSION, Manifest, write_artifact
from ..model.dataset import Dataset, load_builtin, read_csv
from ..registry import CANDIDATE, CHAMPION, PENDING, Registry, registration
from ..rollout.deploy import MODEL_VERSION_VAR, ChampionPin, Deployer
from . import labelshift
from .lock import CooldownActive, LockBusy, RetrainLock, iso

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"mae", "rmse", "log_loss"}
DEFAULT_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "mae"}


@dataclass
class RetrainConfig:
    recent_days: float = 14.0  # labelled predictions from this window are used
    holdout_fraction: float = 0.3  # newest share of the recent window, kept for evaluation only
    min_recent_rows: int = 50
    min_holdout_rows: int = 20
    include_original: bool = True
    original_max_rows: int | None = None  # cap on the original set (its last rows), None = all
    metric: str | None = None  # default: accuracy (classification) or mae (regression)
    margin: float = 0.01  # the candidate must beat the champion by at least this much on `metric`
    floors: dict[str, float] = field(default_factory=dict)  # absolute bounds, e.g. {"accuracy": 0.8, "mae": 60}
    cooldown_seconds: float = 24 * 3600
    lock_ttl_seconds: float = 20 * 60
    # the candidate may do at most this much worse than the champion on the recent-label holdout
    recent_tolerance: float = 0.02
    trusted_uri: str = ""  # curated trusted rows (*.csv) under the training data prefix; "" = none
    max_writer_share: float = 0.5  # pause when one writer wrote more of the window's labels (1 = off)
    max_disagreement_jump: float = 0.2  # pause when label/prediction disagreement jumps this much (1 = off)
    approval: str = "auto"  # auto: a winner rolls out; manual: it waits under the `pending` alias
    max_records: int = DEFAULT_MAX_RECORDS  # newest captured requests / feedback records read per window
    # classifiers: the candidate's gain on the trusted set must pass a one-sided sign test at this level (1 = off)
    significance: float = 0.05


@dataclass
class RetrainResult:
    outcome: str  # promoted | pending | rejected | paused | skipped | failed | dry_run
    reason: str
    model: str
    champion: str | None = None
    candidate: str | None = None
    deployment_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}


class LabelledSource(Protocol):
    def labelled(self, name: str, since: float, until: float) -> list[LabelledRow]: ...


class FeedbackLabelled:
    """Labelled predictions from the feedback store: captured requests joined to their ground truth, at most
    max_records of each (the newest; `dropped` says how many older ones were left out of the last read).
    Rows captured without their features cannot be trained on and are left out."""

    def __init__(self, store: ObjectStore, prefix: str, max_records: int | None = DEFAULT_MAX_RECORDS):
        self.store, self.prefix, self.max_records = store, prefix, max_records
        self.dropped: dict[str, int] = {}

    def labelled(self, name: str, since: float, until: float) -> list[LabelledRow]:
        window = read_window(self.store, self.prefix, since=since, until=until, max_records=self.max_records)
        counts = window.counts()
        self.dropped = {k: v for k, v in counts.items() if k.startswith("dropped_")}
        return [r for r in window.labelled if r.at <= until and r.features]


class Notifier(Protocol):
    def publish(self, subject: str, message: dict[str, Any]) -> None: ...


class SnsNotifier:
    def __init__(self, sns: Any, topic_arn: str):
        self.sns, self.topic = sns, topic_arn

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        import json

        with aws_errors(f"publishing to {self.topic}"):
            self.sns.publish(TopicArn=self.topic, Subject=subject[:100], Message=json.dumps(message, default=str))


class NullNotifier:
    def publish(self, subject: str, message: dict[str, Any]) -> None:
        log.info("announcement (no topic configured): %s", subject)


# ---- data ----------------------------------------------------------------------------------
def original_data_uri(manifest: Manifest) -> str:
    return str(manifest.recipe.get("original_data") or manifest.training_data.get("uri") or "")


def load_original(manifest: Manifest, s3: Any = None, registry: Registry | None = None) -> Dataset:
    """The champion's original training set, read the way it was recorded in its manifest."""
    uri = original_data_uri(manifest)
    recipe = manifest.recipe
    stored = recipe.get("training_data")
    if isinstance(stored, dict) and stored.get("file") and registry is not None:
        return load_stored(registry, manifest, stored)
    missing = recipe.get("missing_values") or ()  # read with the tokens it was trained with
    if not uri:
        raise NotFoundError(f"{manifest.name}/{manifest.version}: the manifest records no training data location")
    if uri.startswith("sklearn:"):
        dataset = load_builtin(uri.split(":", 1)[1])
    elif uri.startswith("s3://"):
        bucket, key = parse_s3_uri(uri)
        body, _ = S3ObjectStore(bucket, s3).get(key)
        dataset = read_csv(body, recipe["target"], recipe.get("features"), recipe.get("dtypes"), missing=missing)
        dataset.source = uri
    else:
        if not Path(uri).is_file():
            raise NotFoundError(f"training data {uri} of {manifest.name}/{manifest.version} is not available")
        dataset = read_csv(uri, recipe["target"], recipe.get("features"), recipe.get("dtypes"), missing=missing)
    expected = manifest.training_data.get("sha256")
    if expected and not manifest.recipe.get("original_data") and dataset.sha256 != expected:
        raise ModelOpsError(
            f"training data {uri} changed since {manifest.name}/{manifest.version} was trained "
            f"(sha256 {dataset.sha256[:12]}… != {expected[:12]}…); refusing to retrain on it"
        )
    return dataset


def load_stored(registry: Registry, manifest: Manifest, stored: dict[str, Any]) -> Dataset:
    """An imported model's training sample, kept in the registry with the version that recorded it."""
    key = registry.version_key(manifest.name, str(stored["version"]), str(stored["file"]))
    where = registry.store.uri(key)
    try:
        body, _ = registry.store.get(key)
    except NotFoundError:
        raise NotFoundError(f"training data {where} of {manifest.name}/{manifest.version} is not available") from None
    recipe = manifest.recipe
    dataset = read_csv(body, recipe["target"], recipe.get("features"), recipe.get("dtypes"))
    dataset.source = where
    if stored.get("sha256") and dataset.sha256 != stored["sha256"]:
        raise ModelOpsError(
            f"training data {where} changed since {manifest.name}/{manifest.version} was registered "
            f"(sha256 {dataset.sha256[:12]}… != {str(stored['sha256'])[:12]}…); refusing to retrain on it"
        )
    return dataset


def labelled_dataset(manifest: Manifest, records: list[LabelledRow], source: str) -> Dataset:
    from ..model.artifact import sha256_bytes

    names = list(manifest.recipe.get("features") or [f["name"] for f in manifest.features])
    dtypes = list(manifest.recipe.get("dtypes") or [f["dtype"] for f in manifest.features])
    numeric = all(d == "number" for d in dtypes)
    X = np.empty((len(records), len(names)), dtype=np.float64 if numeric else object)
    for i, r in enumerate(records):
        for j, (n, d) in enumerate(zip(names, dtypes, strict=True)):
            v = (r.features or {}).get(n)
            X[i, j] = (np.nan if v is None else float(v)) if d == "number" else (np.nan if v is None else v)
    task = manifest.task
    y = np.asarray(
        [float(r.actual) for r in records] if task != CLASSIFICATION else [r.actual for r in records],
        dtype=np.float64 if task != CLASSIFICATION else object,
    )
    digest = (
        sha256_bytes(X.tobytes() + "\n".join(map(str, y)).encode()) if numeric else sha256_bytes(repr((X, y)).encode())
    )
    return Dataset(names, dtypes, X, y, manifest.target, source, digest)


# ---- decision ------------------------------------------------------------------------------
def better_by(metric: str, candidate: float, champion: float) -> float:
    """How much better the candidate is (positive = better), whatever the metric's direction."""
    return champion - candidate if metric in LOWER_IS_BETTER else candidate - champion


# The task each metric belongs to: a floor on another task's metric does not apply (the template sets an
# accuracy floor by default, which a regressor has no accuracy to meet).
METRIC_TASK = {
    **dict.fromkeys(("accuracy", "roc_auc", "f1_macro", "log_loss"), CLASSIFICATION),
    **dict.fromkeys(("mae", "rmse", "r2"), REGRESSION),
}


def floors_for(task: str, floors: dict[str, float]) -> dict[str, float]:
    return {m: bound for m, bound in floors.items() if METRIC_TASK.get(m, task) == task}


def floor_failures(floors: dict[str, float], metrics: dict[str, float]) -> list[str]:
    failures = []
    for metric, bound in sorted(floors.items()):
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric} not available")
        elif metric in LOWER_IS_BETTER and value > bound:
            failures.append(f"{metric} {value:.4f} above the limit {bound}")
        elif metric not in LOWER_IS_BETTER and value < bound:
            failures.append(f"{metric} {value:.4f} below the floor {bound}")
    return failures


def decide_trusted(
    metric: str,
    margin: float,
    tolerance: float,
    floors: dict[str, float],
    trusted_scores: tuple[dict[str, float], dict[str, float]],
    recent_scores: tuple[dict[str, float], dict[str, float]],
) -> tuple[bool, str]:
    """(candidate, champion) metrics on the trusted set and on the recent-label holdout. The trusted set decides
    (margin, floors); the recent holdout, whose labels clients wrote, can only veto (tolerance)."""
    accept, reason = decide(metric, margin, floors, *trusted_scores, where="trusted set")
    reason = f"trusted set: {reason}"
    if not accept:
        return False, reason
    candidate, champion = recent_scores
    if metric not in candidate or metric not in champion:
        return False, f"{reason}; metric '{metric}' is not available on the recent holdout"
    gain = better_by(metric, candidate[metric], champion[metric])
    recent = f"recent holdout {metric}: candidate {candidate[metric]:.4f} vs champion {champion[metric]:.4f} (gain {gain:+.4f}, tolerance {tolerance})"
    if gain < -tolerance:
        return False, f"candidate loses on the recent holdout by more than the tolerance; {recent}; {reason}"
    return True, f"{reason}; {recent}"


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign (McNemar) test: the chance of at least `wins` of the wins + losses discordant rows
    going the candidate's way if both models were equally good. 1.0 when no row tells them apart."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def decide(
    metric: str,
    margin: float,
    floors: dict[str, float],
    candidate: dict[str, float],
    champion: dict[str, float],
    where: str = "holdout",
) -> tuple[bool, str]:
    if metric not in candidate or metric not in champion:
        return False, f"metric '{metric}' is not available on the {where}"
    gain = better_by(metric, candidate[metric], champion[metric])
    failures = floor_failures(floors, candidate)
    summary = f"{metric}: candidate {candidate[metric]:.4f} vs champion {champion[metric]:.4f} (gain {gain:+.4f}, margin {margin})"
    if failures:
        return False, f"candidate fails the floors ({'; '.join(failures)}); {summary}"
    if gain < margin:
        return False, f"candidate does not beat the champion by the margin; {summary}"
    return True, f"candidate beats the champion; {summary}"


class Retrainer:
    def __init__(
        self,
        registry: Registry,
        name: str,
        *,
        labelled: LabelledSource,
        deployer: Deployer,
        notifier: Notifier | None = None,
        config: RetrainConfig | None = None,
        lock: RetrainLock | None = None,
        clock: Callable[[], float] = time.time,
        train_fn: Callable[..., training.TrainedModel] = training.train,
        data_s3: Any = None,
    ):
        self.registry, self.name = registry, name
        self.labelled, self.deployer = labelled, deployer
        self.notifier = notifier or NullNotifier()
        self.config = config or RetrainConfig()
        self.clock = clock
        self.lock = lock or RetrainLock.for_registry(
            registry,
            name,
            ttl_seconds=self.config.lock_ttl_seconds,
            cooldown_seconds=self.config.cooldown_seconds,
            clock=clock,
        )
        self.train_fn = train_fn
        self.data_s3 = data_s3 if data_s3 is not None else registry.s3

    # ---- entry point -------------------------------------------------------------------------
    def run(self, trigger: dict[str, Any], *, dry_run: bool = False, ignore_cooldown: bool = False) -> RetrainResult:
        if dry_run:
            return self.dry_run(trigger)
        try:
            lease = self.lock.acquire(ignore_cooldown=ignore_cooldown)
        except (LockBusy, CooldownActive) as exc:
            skipped = RetrainResult("skipped", str(exc), self.name, stage="lock")
            log.info("retrain skipped: %s", exc)
            self._record("retrain_skipped", trigger, skipped)
            return skipped
        except ModelOpsError as exc:  # the lock store itself failed: nothing ran
            failed = RetrainResult("failed", str(exc), self.name, stage="lock")
            log.error("retrain not started: %s", exc)
            self._record("retrain_failed", trigger, failed)
            self._announce(failed)
            return failed
        result: RetrainResult | None = None
        progress: dict[str, Any] = {}
        try:
            result = self._run_locked(trigger, False, progress)
        except Exception as exc:  # any failure: record it with what was known so far, keep the champion
            stage = getattr(exc, "stage", None)
            reason = str(exc) if isinstance(exc, ModelOpsError) else f"{type(exc).__name__}: {exc}"
            result = RetrainResult("failed", reason, self.name, stage=stage, **progress)
            _log_failure(exc, stage)
        finally:
            decided = result is not None and result.outcome in ("promoted", "pending", "rejected")
            try:
                if not self.lock.release(lease, outcome=result.outcome if decided and result else None):
                    log.warning("retrain lock was lost (expired and taken over) before release")
            except Exception:  # an unreleased lock expires by itself
                log.exception("could not release the retrain lock; it expires at %s", iso(lease.expires_at))
        event = {
            "promoted": "retrain_decision",
            "pending": "retrain_decision",
            "rejected": "retrain_decision",
            "paused": "retrain_paused",
            "skipped": "retrain_skipped",
        }.get(result.outcome, "retrain_failed")
        self._record(event, trigger, result)
        self._announce(result)
        return result

    def dry_run(self, trigger: dict[str, Any]) -> RetrainResult:
        """Decide without writing anything: no lock, no history event, no announcement, no registration."""
        progress: dict[str, Any] = {}
        try:
            return self._run_locked(trigger, True, progress)
        except Exception as exc:
            stage_name = getattr(exc, "stage", None)
            reason = str(exc) if isinstance(exc, ModelOpsError) else f"{type(exc).__name__}: {exc}"
            _log_failure(exc, stage_name)
            return RetrainResult("failed", reason, self.name, stage=stage_name, **progress)

    # ---- stages ------------------------------------------------------------------------------
    def _run_locked(self, trigger: dict[str, Any], dry_run: bool, progress: dict[str, Any]) -> RetrainResult:
        cfg = self.config
        with stage("guard"):
            running = self.deployer.in_flight()
            if running:
                return RetrainResult("skipped", f"rollout {running} is still in progress", self.name, stage="guard")
            self.deployer.check()
        with stage("champion"):
            champion_version = self.registry.resolve(self.name, CHAMPION)
            champion = self.registry.load(self.name, champion_version)
            manifest = champion.manifest
            metric = cfg.metric or DEFAULT_METRIC[manifest.task]
            progress["champion"] = champion_version
            trusted_ds, trusted_info = trusted.trusted_set(self.registry, manifest, cfg.trusted_uri, self.data_s3)
            champion_trusted = (
                self._evaluate(manifest, champion.estimator, manifest, trusted_ds) if trusted_ds is not None else None
            )
        with stage("data"):
            now = self.clock()
            since = now - cfg.recent_days * 86400
            records = sorted(self.labelled.labelled(self.name, since, now), key=lambda r: r.at)
            data: dict[str, Any] = {
                "recent_window": {"since": iso(since), "until": iso(now)},
                "recent_rows": len(records),
                "trusted": trusted_info,
                **(getattr(self.labelled, "dropped", None) or {}),
            }
            progress["data"] = data
            if len(records) < cfg.min_recent_rows:
                return RetrainResult(
                    "skipped",
                    f"only {len(records)} labelled predictions in the last "
                    f"{cfg.recent_days:g} days; {cfg.min_recent_rows} are needed",
                    self.name,
                    champion=champion_version,
                    data=data,
                    stage="data",
                )
        with stage("inspect"):
            baseline_error = _error_rate(champion_trusted if champion_trusted is not None else manifest.metrics)
            suspicion = labelshift.inspect(
                records,
                classification=manifest.task == CLASSIFICATION,
                baseline_error=baseline_error,
                max_writer_share=cfg.max_writer_share,
                max_disagreement_jump=cfg.max_disagreement_jump,
                min_rows=cfg.min_recent_rows,
            )
            data["labels"] = suspicion.detail
            if suspicion.suspect:
                return RetrainResult(
                    "paused",
                    "label shift suspected, nothing was trained: " + "; ".join(suspicion.reasons),
                    self.name,
                    champion=champion_version,
                    data=data,
                    stage="inspect",
                )
        with stage("data"):
            n_holdout = max(cfg.min_holdout_rows, int(round(len(records) * cfg.holdout_fraction)))
            if n_holdout >= len(records):
                raise ModelOpsError(
                    f"{len(records)} labelled rows cannot give a holdout of {n_holdout} and training rows"
                )
            recent_train, holdout = records[:-n_holdout], records[-n_holdout:]
            recent_ds = labelled_dataset(
                manifest, recent_train, f"labelled:{iso(recent_train[0].at)}..{iso(recent_train[-1].at)}"
            )
            holdout_ds = labelled_dataset(manifest, holdout, f"labelled:{iso(holdout[0].at)}..{iso(holdout[-1].at)}")
            judged_on = trusted.row_keys(trusted_ds) if trusted_ds is not None else set()
            recent_ds, excluded = trusted.without_rows(recent_ds, judged_on)
            if cfg.include_original:
                original = load_original(manifest, self.data_s3, self.registry)
                if cfg.original_max_rows:
                    original.X, original.y = original.X[-cfg.original_max_rows :], original.y[-cfg.original_max_rows :]
                data["original"] = {"uri": original.source, "sha256": original.sha256, "rows": original.rows}
                original, excluded_original = trusted.without_rows(original, judged_on)
                excluded += excluded_original
                train_ds = original.concat(recent_ds)
            else:
                train_ds = recent_ds
            data.update(
                train_rows=train_ds.rows,
                recent_train_rows=recent_ds.rows,
                holdout_rows=holdout_ds.rows,
                holdout_window={"since": iso(holdout[0].at), "until": iso(holdout[-1].at)},
            )
            if excluded:
                data["trusted_rows_not_trained_on"] = excluded
        with stage("train"):
            recipe = manifest.recipe
            if registration.is_imported(manifest):  # no modelops.model.training recipe: refit the user's own estimator
                trained = registration.refit(champion, train_ds, self.name)
            else:
                trained = self.train_fn(
                    train_ds,
                    self.name,
                    task=recipe.get("task", manifest.task),
                    estimator_kind=recipe.get("estimator"),
                    seed=int(recipe.get("seed", training.SEED)),
                    test_size=float(recipe.get("test_size", training.TEST_SIZE)),
                )
            trained.manifest.recipe["original_data"] = original_data_uri(manifest)
            trained.manifest.training_data["parts"] = {
                k: v for k, v in data.items() if k not in ("recent_window", "labels", "trusted")
            }
            # The candidate keeps the champion's trusted set, never a split of data that holds client labels.
            if trusted_ds is not None:
                trained.evaluation = trusted.stored_bytes(self.registry, manifest)
                trained.manifest.evaluation = {**manifest.evaluation, "from_version": champion_version}
            else:
                trained.evaluation, trained.manifest.evaluation = None, {}
            progress["candidate"] = trained.manifest.version
        with stage("evaluate"):
            champion_metrics = self._evaluate(manifest, champion.estimator, manifest, holdout_ds)
            candidate_metrics = self._evaluate(manifest, trained.estimator, trained.manifest, holdout_ds)
            candidate_trusted = (
                self._evaluate(manifest, trained.estimator, trained.manifest, trusted_ds)
                if trusted_ds is not None
                else None
            )
            paired = (
                self._paired(manifest, champion.estimator, trained.estimator, trained.manifest, trusted_ds)
                if trusted_ds is not None and manifest.task == CLASSIFICATION
                else None
            )
        metrics: dict[str, Any] = {
            "metric": metric,
            "champion": champion_metrics,
            "candidate": candidate_metrics,
            "candidate_training": trained.manifest.metrics,
        }
        floors = floors_for(manifest.task, cfg.floors)
        if champion_trusted is not None and candidate_trusted is not None:
            metrics["trusted"] = {"champion": champion_trusted, "candidate": candidate_trusted}
            accept, reason = decide_trusted(
                metric,
                cfg.margin,
                cfg.recent_tolerance,
                floors,
                (candidate_trusted, champion_trusted),
                (candidate_metrics, champion_metrics),
            )
            if paired is not None:
                metrics["trusted"]["paired"] = paired
                if accept and paired["p_value"] > cfg.significance:
                    accept = False
                    reason = (
                        f"the candidate's gain on the trusted set is within chance: it is right on "
                        f"{paired['candidate_only_right']} rows the champion gets wrong and wrong on "
                        f"{paired['champion_only_right']} it gets right (one-sided sign test p = "
                        f"{paired['p_value']:.3f}, above {cfg.significance:g}); {reason}"
                    )
            manual = cfg.approval == "manual"
        else:
            accept, reason = decide(metric, cfg.margin, floors, candidate_metrics, champion_metrics)
            reason = (
                f"champion {champion_version} has no trusted evaluation set, so only the recent labels "
                f"(written by clients) were compared and a winner needs manual approval; {reason}"
            )
            manual = True
        progress["metrics"] = metrics
        result = RetrainResult(
            "rejected",
            reason,
            self.name,
            champion=champion_version,
            candidate=trained.manifest.version,
            metrics=metrics,
            data=data,
            stage="decide",
        )
        if not accept:
            return result
        if dry_run:
            result.outcome = "dry_run"
            result.reason = f"would {'wait for approval' if manual else 'promote'}: {reason}"
            return result
        with stage("register"), tempfile.TemporaryDirectory() as tmp:
            write_artifact(tmp, trained.estimator, trained.manifest, trained.golden, trained.evaluation)
            self.registry.register(tmp)
        candidate = trained.manifest.version
        if manual:
            with stage("approval"):
                replaced = self.registry.get_alias(self.name, PENDING).version
                self.registry.set_alias(self.name, PENDING, candidate, reason=reason[:200], trigger="retrain")
            result.outcome, result.stage = "pending", "approval"
            result.reason = f"{reason}; waiting for approval: modelops models approve {self.name} {candidate}" + (
                f" (replaces the pending {replaced}, which can no longer be approved)" if replaced else ""
            )
            if replaced:
                result.data["replaced_pending"] = replaced
            return result
        with stage("deploy"):
            rollout = start_rollout(
                self.registry,
                self.name,
                self.deployer,
                candidate,
                champion_version,
                reason=reason,
                trigger="retrain",
                description=f"retrain: {self.name} {champion_version} -> {candidate}",
            )
        result.outcome, result.deployment_id, result.stage = "promoted", rollout.deployment_id, "deploy"
        result.reason = f"{reason}; {rollout.mechanism} rollout {rollout.deployment_id} started"
        if rollout.previous_version:
            result.reason += f" (from Lambda version {rollout.previous_version})"
        return result

    def _paired(
        self, manifest: Manifest, champion: Any, candidate: Any, candidate_manifest: Manifest, ds: Dataset
    ) -> dict[str, Any]:
        """Rows of the trusted set only one of the two classifiers gets right, and the sign test on them."""
        y = _as_classes(ds.y, manifest.classes)
        champion_right = np.asarray(champion.predict(_model_input(manifest, ds.X))) == y
        candidate_right = np.asarray(candidate.predict(_model_input(candidate_manifest, ds.X))) == y
        wins = int(np.sum(candidate_right & ~champion_right))
        losses = int(np.sum(champion_right & ~candidate_right))
        return {"candidate_only_right": wins, "champion_only_right": losses, "p_value": sign_test(wins, losses)}

    def _evaluate(self, manifest: Manifest, estimator: Any, model_manifest: Manifest, ds: Dataset) -> dict[str, float]:
        y = ds.y if manifest.task != CLASSIFICATION else _as_classes(ds.y, manifest.classes)
        return training.evaluate(manifest.task, estimator, _model_input(model_manifest, ds.X), y)

    # ---- audit + announce --------------------------------------------------------------------
    def _record(self, event: str, trigger: dict[str, Any], result: RetrainResult) -> None:
        try:
            self.registry.record(self.name, event, {"trigger": trigger, **result.to_dict()})
        except Exception:  # the decision itself stands; the log keeps it
            log.exception("could not record %s in the registry history: %s", event, result.to_dict())

    def _announce(self, result: RetrainResult) -> None:
        if result.outcome == "skipped" and result.stage == "lock":
            return  # a second alarm during a run is a no-op, not news
        subject = {
            "promoted": f"modelops: {self.name} candidate {result.candidate} is rolling out",
            "rejected": f"modelops: {self.name} candidate not promoted",
            "pending": f"modelops: {self.name} candidate {result.candidate} waits for approval",
            "paused": f"modelops: {self.name} retrain paused, labels look steered",
        }.get(result.outcome, f"modelops: {self.name} retrain {result.outcome}")
        try:
            self.notifier.publish(subject, result.to_dict())
        except Exception:
            log.exception("could not announce the retrain outcome")


def start_rollout(
    registry: Registry,
    name: str,
    deployer: Deployer,
    candidate: str,
    champion: str,
    *,
    reason: str,
    trigger: str,
    description: str,
) -> Any:
    """The one way a candidate goes live, for an automatic decision and an approval alike: the candidate alias names
    it (the PreTraffic hook lets a deployment serve only the champion or this candidate), then the stack update
    starts. If it cannot start, the candidate alias names the champion again."""
    registry.set_alias(name, CANDIDATE, candidate, reason=reason[:200], trigger=trigger)
    try:
        return deployer.start(candidate, description)
    except Exception:
        reset_candidate(registry, name, champion, "the rollout could not start")
        raise


def _error_rate(metrics: dict[str, Any] | None) -> float | None:
    accuracy = (metrics or {}).get("accuracy")
    return None if accuracy is None else 1.0 - float(accuracy)


def _log_failure(exc: Exception, stage_name: str | None) -> None:
    if isinstance(exc, ModelOpsError):  # the reason is in the result; a traceback would add nothing
        log.info("retrain failed at stage %s: %s", stage_name, exc)
    else:
        log.exception("retrain failed at stage %s", stage_name)


def _model_input(manifest: Manifest, X: np.ndarray) -> Any:
    """Rows as the model takes them: the DataFrame it was fitted on, when it was fitted on one."""
    return signature.model_input(manifest.features, manifest.input, X)


def _as_classes(y: np.ndarray, classes: list[Any] | None) -> np.ndarray:
    """Labels typed like the champion's classes (feedback may carry '1' for class 1)."""
    if not classes:
        return y
    lookup = {str(c): c for c in classes}
    unknown = sorted({str(v) for v in y} - set(lookup))
    if unknown:
        raise ModelOpsError(f"labelled data has classes the model does not know: {', '.join(unknown[:5])}")
    return np.asarray([lookup[str(v)] for v in y], dtype=object if any(isinstance(c, str) for c in classes) else None)


class stage:
    """Context manager that tags an exception with the stage it happened in."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> stage:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is not None and getattr(exc, "stage", None) is None:
            with contextlib.suppress(AttributeError):
                exc.stage = self.name  # type: ignore[attr-defined]
        return False


# ---- finalize after the rollout --------------------------------------------------------------
def reset_candidate(registry: Registry, name: str, champion: str | None, reason: str) -> None:
    """No rollout in flight: the candidate alias names the champion again, so the PreTraffic hook accepts nothing
    but the champion."""
    if not champion:
        return
    try:
        registry.set_alias(name, CANDIDATE, champion, reason=reason, trigger="rollout-finished")
    except ModelOpsError:
        log.exception("could not reset the candidate alias of %s", name)


def finalize(
    registry: Registry,
    name: str,
    deployer: Deployer,
    pin: ChampionPin,
    notifier: Notifier | None,
    deployment_id: str,
    succeeded: bool,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Called when a stack update of the predict function ends. On success the model the `live` alias now serves
    becomes the champion: first the SSM pin (what a later `sam deploy` resolves), then the registry alias. On failure
    CloudFormation and CodeDeploy have already rolled the stack and the traffic back; nothing moves."""
    notifier = notifier or NullNotifier()
    champion = registry.get_alias(name, CHAMPION).version
    candidate = registry.get_alias(name, CANDIDATE).version
    detail: dict[str, Any] = {"deployment_id": deployment_id, "trigger": trigger or {}, "champion_before": champion}
    if candidate and candidate != champion:
        detail["candidate"] = candidate
    if not succeeded:
        detail.update(outcome="rolled_back", reason="the rollout did not succeed; the champion keeps serving")
        reset_candidate(registry, name, champion, f"rollout {deployment_id} rolled back")
        registry.record(name, "rollout_finished", detail)
        notifier.publish(f"modelops: {name} rollout {deployment_id} rolled back", detail)
        return detail
    live = deployer.live_model_version()
    if not live:
        raise ModelOpsError(f"the live alias of {name}'s predict function has no {MODEL_VERSION_VAR} set")
    pin.put(live)
    if live != champion:
        try:
            registry.set_alias(
                name,
                CHAMPION,
                live,
                expected=champion,
                reason=f"rollout {deployment_id} succeeded",
                trigger=f"rollout:{deployment_id}",
            )
        except ConflictError:
            detail["warning"] = "the champion alias changed during the rollout; the SSM pin follows what is live"
    reset_candidate(registry, name, live, f"rollout {deployment_id} finished")
    detail.update(outcome="promoted" if live != champion else "unchanged", champion=live)
    registry.record(name, "rollout_finished", detail)
    notifier.publish(
        f"modelops: {name} {live} is the champion"
        if live != champion
        else f"modelops: {name} rollout {deployment_id} finished",
        detail,
    )
    return detail
