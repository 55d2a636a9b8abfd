"""The feedback function's objects from its environment: the feedback store and the label rule (the served
models' classes, and whether they are regressors). Both are built on first use, so a misconfigured function
answers each request with a clear error instead of failing its init; a label rule that could not be read is
not kept, and the next request tries again.

Environment:
    MODELOPS_DATA_URI      s3://bucket/prefix (or a local directory) where feedback is stored
    MODELOPS_REGISTRY, MODELOPS_MODEL_NAME, MODELOPS_MODEL_VERSION, MODELOPS_CHALLENGER_VERSION
                           the registry and the served versions whose labels are accepted
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..adapters.objectstore import open_location
from ..capture.feedback import FeedbackStore, LabelsUnavailable
from ..core import env as settings
from ..core.errors import ModelOpsError

LabelRule = tuple[list | None, bool]  # (classes, regression)


class FeedbackWiring:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        store: FeedbackStore | None = None,
        label_rule: Callable[[], LabelRule] | None = None,
    ):
        self.env = env
        self._store = store
        self._read_label_rule = label_rule or self._label_rule_from_registry
        self._label_rule: LabelRule | None = None

    def store(self) -> FeedbackStore:
        if self._store is None:
            store, prefix = open_location(settings.required("MODELOPS_DATA_URI", env=self.env))
            self._store = FeedbackStore(store, prefix)
        return self._store

    def label_rule(self) -> LabelRule:
        """The served models' classes (so a typo in a label is refused rather than stored) and whether they are
        regressors (so only finite numbers are labels). LabelsUnavailable when they cannot be read now."""
        if self._label_rule is None:
            self._label_rule = self._read_label_rule()
        return self._label_rule

    def _label_rule_from_registry(self) -> LabelRule:
        try:
            from ..model.artifact import REGRESSION
            from ..registry import Registry

            env = self.env
            registry = Registry(settings.required("MODELOPS_REGISTRY", env=env))
            name = settings.required("MODELOPS_MODEL_NAME", env=env)
            classes: set[Any] = set()
            tasks: set[str] = set()
            served = (
                settings.text("MODELOPS_MODEL_VERSION", env=env),
                settings.text("MODELOPS_CHALLENGER_VERSION", env=env),
            )
            for version in filter(None, served):
                manifest = registry.manifest(name, version)
                classes.update(manifest.classes or [])
                tasks.add(manifest.task)
        except (KeyError, ModelOpsError) as exc:
            raise LabelsUnavailable(str(exc)) from exc
        return sorted(classes, key=str) or None, bool(tasks) and tasks == {REGRESSION}


def build(env: Mapping[str, str] | None = None, **overrides: Any) -> FeedbackWiring:
    """The feedback function's objects; `store=` and `label_rule=` replace what the environment would give."""
    return FeedbackWiring(env, **overrides)
