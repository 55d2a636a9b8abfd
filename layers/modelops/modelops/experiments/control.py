"""Starting, stopping and promoting an A/B experiment: the split document goes to AppConfig (or a
local file), the challenger is recorded in the registry, and every change lands in its history.

The predict function serves B only when it has a challenger pinned (MODELOPS_CHALLENGER_VERSION,
template parameter ChallengerVersion); the split itself changes here, without a redeploy.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..adapters.aws import aws_errors, client
from ..core.errors import ModelOpsError
from ..registry import CHALLENGER, CHAMPION, Registry
from . import assignment as experiment

APPCONFIG_STRATEGY = "AppConfig.AllAtOnce"


@dataclass
class AppConfigTarget:
    application: str
    environment: str
    profile: str
    strategy: str = APPCONFIG_STRATEGY


class AppConfigPublisher:
    """Publishes a flag document as a new hosted configuration version and deploys it."""

    def __init__(self, target: AppConfigTarget, appconfig: Any = None):
        self.target = target
        self.appconfig = appconfig or client("appconfig")

    def publish(self, document: dict[str, Any], description: str) -> dict[str, Any]:
        t = self.target
        with aws_errors(f"publishing the A/B split to AppConfig {t.application}/{t.profile}"):
            version = self.appconfig.create_hosted_configuration_version(
                ApplicationId=t.application,
                ConfigurationProfileId=t.profile,
                Content=json.dumps(document).encode(),
                ContentType="application/json",
                Description=description[:1024],
            )["VersionNumber"]
            deployment = self.appconfig.start_deployment(
                ApplicationId=t.application,
                EnvironmentId=t.environment,
                DeploymentStrategyId=t.strategy,
                ConfigurationProfileId=t.profile,
                ConfigurationVersion=str(version),
                Description=description[:1024],
            )
        return {"configuration_version": version, "deployment": deployment.get("DeploymentNumber")}


class FilePublisher:
    """The local stand-in: the predict function reads the same document from MODELOPS_AB_CONFIG_FILE."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def publish(self, document: dict[str, Any], description: str) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}-")
        with os.fdopen(fd, "w") as fh:
            json.dump(document, fh)
        os.replace(tmp, self.path)  # readers see the old or the new document, never half of one
        return {"file": str(self.path)}


def start(registry: Registry, publisher: Any, model: str, challenger: str, percent: float) -> dict[str, Any]:
    document = experiment.flag_document(percent)
    challenger_manifest = registry.manifest(model, challenger)
    champion = registry.get_alias(model, CHAMPION).version
    if champion == challenger_manifest.version:
        raise ModelOpsError(f"{challenger_manifest.version} is already the champion of {model}; pick another version")
    registry.set_alias(
        model, CHALLENGER, challenger_manifest.version, reason=f"A/B test at {percent:g}%", trigger="cli:ab-start"
    )
    published = publisher.publish(document, f"A/B {model}: {percent:g}% to {challenger_manifest.version}")
    registry.record(
        model,
        "ab_started",
        {"champion": champion, "challenger": challenger_manifest.version, "percent": percent, **published},
    )
    return {
        "model": model,
        "champion": champion,
        "challenger": challenger_manifest.version,
        "percent": percent,
        **published,
    }


def stop(registry: Registry, publisher: Any, model: str, reason: str = "") -> dict[str, Any]:
    published = publisher.publish(experiment.flag_document(0), f"A/B {model}: stopped")
    challenger = registry.get_alias(model, CHALLENGER).version
    registry.record(model, "ab_stopped", {"challenger": challenger, "reason": reason, **published})
    return {"model": model, "challenger": challenger, "percent": 0.0, **published}


def promote(registry: Registry, publisher: Any, model: str, reason: str = "") -> dict[str, Any]:
    """Make the challenger the champion in the registry and send all traffic back to A (which, once the
    rollout of the new champion finishes, serves the promoted version)."""
    challenger = registry.get_alias(model, CHALLENGER).version
    if not challenger:
        raise ModelOpsError(f"model {model} has no challenger to promote: start an A/B test first")
    champion = registry.get_alias(model, CHAMPION).version
    registry.set_alias(
        model, CHAMPION, challenger, expected=champion, reason=reason or "A/B promotion", trigger="cli:ab-promote"
    )
    published = publisher.publish(experiment.flag_document(0), f"A/B {model}: {challenger} promoted")
    registry.record(model, "ab_promoted", {"from": champion, "to": challenger, "reason": reason, **published})
    return {"model": model, "previous_champion": champion, "champion": challenger, **published}
