"""The locked retrain run: assemble data, train a candidate with the champion's recipe, compare both on
the same recent holdout, and roll the candidate out only when it is clearly better (the rules: decision.py; the
data: data.py; the hand-off to the canary and its end: finalize.py).

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
the same way but writes nothing: no lock, no history, no announcement."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from ..adapters.notify import NullNotifier
from ..capture.partitions import DEFAULT_MAX_RECORDS
from ..core.clock import iso_seconds
from ..core.errors import ModelOpsError
from ..model import signature, training, trusted
from ..model.artifact import CLASSIFICATION, Manifest, write_artifact
from ..model.dataset import Dataset
from ..ports import Deployer, Notifier
from ..registry import CHAMPION, PENDING, Registry, registration
from . import labelshift
from .data import LabelledSource, labelled_dataset, load_original, original_data_uri
from .decision import DEFAULT_METRIC, decide, decide_trusted, floors_for, sign_test
from .finalize import start_rollout
from .lock import CooldownActive, LockBusy, RetrainLock

log = logging.getLogger(__name__)


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
                log.exception("could not release the retrain lock; it expires at %s", iso_seconds(lease.expires_at))
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
                "recent_window": {"since": iso_seconds(since), "until": iso_seconds(now)},
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
                manifest,
                recent_train,
                f"labelled:{iso_seconds(recent_train[0].at)}..{iso_seconds(recent_train[-1].at)}",
            )
            holdout_ds = labelled_dataset(
                manifest, holdout, f"labelled:{iso_seconds(holdout[0].at)}..{iso_seconds(holdout[-1].at)}"
            )
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
                holdout_window={"since": iso_seconds(holdout[0].at), "until": iso_seconds(holdout[-1].at)},
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
