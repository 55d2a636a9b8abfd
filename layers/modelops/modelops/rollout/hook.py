"""Pre-traffic validation of a new predict function version (a CodeDeploy lifecycle hook).

Before CodeDeploy shifts any traffic, the hook:
  1. reads which model version(s) the new Lambda version is pinned to (its environment), and refuses a model
     version that is neither the registry's champion nor the candidate of a retrain rollout: a stale pin or
     parameter can never silently put an older model back;
  2. invokes the new version directly with the model's golden request set (golden.json in the
     registry: held-out rows plus the predictions and probabilities that exact model gave);
  3. checks the answer is a valid 200 response served by a pinned model version and that every
     prediction matches (labels exactly, probabilities and regression values within tolerance);
  4. reports Succeeded or Failed with PutLifecycleEventHookExecutionStatus.

Step 4 happens on every path, including the hook's own crash: a hook that never reports leaves the
deployment waiting for an hour. The AWS calls go through small clients passed in, so tests swap them.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InputError, ModelOpsError
from ..serving.events import rest_predict_event

SUCCEEDED = "Succeeded"
FAILED = "Failed"
DEFAULT_TOLERANCE = 1e-6
MAX_PROBLEMS_REPORTED = 10

logger = logging.getLogger(__name__)


@dataclass
class HookResult:
    status: str
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # model version -> golden rows checked

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "problems": self.problems[:MAX_PROBLEMS_REPORTED], "checked": self.checked}


# ---- pure comparison ---------------------------------------------------------------------------
def _close(expected: float, actual: Any, tolerance: float) -> bool:
    if isinstance(actual, bool) or not isinstance(actual, (int, float)) or not math.isfinite(actual):
        return False
    return abs(float(actual) - float(expected)) <= tolerance * max(1.0, abs(float(expected)))


def _probability_rows(raw: Any, classes: list[Any] | None) -> list[list[Any]] | None:
    """Probabilities as lists in class order; accepts [[p0, p1], ...] or [{"benign": p0, ...}, ...]."""
    if not isinstance(raw, list):
        return None
    rows: list[list[Any]] = []
    for item in raw:
        if isinstance(item, Mapping):
            if not classes:
                return None
            rows.append([item.get(str(c), item.get(c)) if not isinstance(c, str) else item.get(c) for c in classes])
        elif isinstance(item, list):
            rows.append(item)
        else:
            return None
    return rows


def compare_with_golden(
    golden: Mapping[str, Any], answer: Mapping[str, Any], classes: list[Any] | None, tolerance: float | None = None
) -> list[str]:
    """Problems found when comparing a predict answer with the golden set (empty = identical)."""
    tol = float(tolerance if tolerance is not None else golden.get("tolerance", DEFAULT_TOLERANCE))
    expected = golden.get("predictions") or []
    got = answer.get("predictions")
    if not isinstance(got, list):
        return ["answer has no 'predictions' list"]
    if len(got) != len(expected):
        return [f"answer has {len(got)} predictions for {len(expected)} golden rows"]
    problems: list[str] = []
    for i, (exp, act) in enumerate(zip(expected, got, strict=True)):
        if isinstance(exp, (int, float)) and not isinstance(exp, bool) and classes is None:
            if not _close(exp, act, tol):
                problems.append(f"row {i}: prediction {act!r} differs from golden {exp!r} (tolerance {tol:g})")
        elif act != exp:
            problems.append(f"row {i}: prediction {act!r} differs from golden {exp!r}")
    if "probabilities" in golden:
        rows = _probability_rows(answer.get("probabilities"), classes)
        if rows is None or len(rows) != len(golden["probabilities"]):
            problems.append("answer's 'probabilities' are missing or have the wrong shape")
        else:
            for i, (exp_row, act_row) in enumerate(zip(golden["probabilities"], rows, strict=True)):
                if len(act_row) != len(exp_row) or not all(
                    _close(e, a, tol) for e, a in zip(exp_row, act_row, strict=True)
                ):
                    problems.append(
                        f"row {i}: probabilities {act_row!r} differ from golden {exp_row!r} (tolerance {tol:g})"
                    )
    return problems


def predict_event(instances: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    """An API Gateway REST proxy event for POST /predict, as the alias would receive it."""
    return rest_predict_event(json.dumps({"instances": instances}), request_id, user_agent="modelops-pretraffic-hook")


# ---- AWS-facing steps -----------------------------------------------------------------------------
@dataclass
class HookContext:
    """What the hook needs from the outside world; each piece is a plain callable or client."""

    codedeploy: Any  # put_lifecycle_event_hook_execution_status
    lambda_client: Any  # get_function_configuration, invoke
    load_golden: Callable[[str], tuple[dict[str, Any], list[Any] | None]]  # model version -> (golden, classes)
    target_function: str  # ARN of the new function version
    # Model versions a deployment may serve (the registry's champion, and the candidate of a retrain rollout);
    # None skips the check.
    allowed_models: Callable[[], set[str]] | None = None
    # Raises when the stack does not resolve its model version from one of its own pins; None skips the check.
    check_stack: Callable[[], None] | None = None


def served_versions(lambda_client: Any, target_function: str) -> tuple[str, str | None]:
    """The champion and (optional) challenger model versions the target function version is pinned to."""
    config = lambda_client.get_function_configuration(FunctionName=target_function)
    variables = (config.get("Environment") or {}).get("Variables") or {}
    champion = variables.get("MODELOPS_MODEL_VERSION")
    if not champion:
        raise ModelOpsError(f"{target_function} has no MODELOPS_MODEL_VERSION: it is not pinned to a model version")
    return champion, (variables.get("MODELOPS_CHALLENGER_VERSION") or None)


def invoke_predict(
    lambda_client: Any, target_function: str, instances: list[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    response = lambda_client.invoke(
        FunctionName=target_function,
        InvocationType="RequestResponse",
        Payload=json.dumps(predict_event(instances, f"pretraffic-{uuid.uuid4()}")).encode(),
    )
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        raise ModelOpsError(f"the new version raised {response['FunctionError']}: {payload[:300]!r}")
    try:
        result = json.loads(payload)
        status = int(result.get("statusCode", 0))
        body = json.loads(result.get("body") or "{}")
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelOpsError(
            f"the new version answered something that is not an API Gateway proxy response: {exc}"
        ) from None
    return status, body if isinstance(body, dict) else {}


MAX_ATTEMPTS = 6


def validate_new_version(ctx: HookContext) -> HookResult:
    """Replay a pinned model's golden requests and compare the answer with that model's golden answers.

    During an A/B test a request may be answered by either pinned model. When the other one answers,
    its own golden requests are sent next, until the model that answers is the one whose golden set
    was sent (the assignment of a request without an entity id is random)."""
    champion, challenger = served_versions(ctx.lambda_client, ctx.target_function)
    if ctx.check_stack is not None:
        try:
            ctx.check_stack()
        except ModelOpsError as exc:
            return HookResult(FAILED, [str(exc)])
    if ctx.allowed_models is not None:
        allowed = ctx.allowed_models()
        if champion not in allowed:
            named = " or ".join(sorted(allowed)) or "none (the registry has no champion)"
            return HookResult(
                FAILED,
                [
                    f"the new version would serve model version {champion}, but the registry allows {named}; "
                    "set the champion (modelops models promote) and its SSM pin, then deploy again"
                ],
            )
    pinned = {champion} | ({challenger} if challenger else set())
    goldens: dict[str, tuple[dict[str, Any], list[Any] | None]] = {}
    want = champion
    for _ in range(MAX_ATTEMPTS):
        if want not in goldens:
            goldens[want] = ctx.load_golden(want)
        golden, classes = goldens[want]
        instances = golden.get("instances") or []
        if not instances:
            return HookResult(FAILED, [f"model version {want} has no golden requests to validate with"])
        status, body = invoke_predict(ctx.lambda_client, ctx.target_function, instances)
        if status != 200:
            error = body.get("error") if isinstance(body.get("error"), dict) else body
            return HookResult(FAILED, [f"POST /predict answered {status}: {json.dumps(error)[:300]}"])
        served = str((body.get("model") or {}).get("version") or "")
        if served not in pinned:
            pinned_text = f"{champion}" + (f" or {challenger}" if challenger else "")
            return HookResult(
                FAILED, [f"answer was served by model version {served or '(none)'}, not the pinned {pinned_text}"]
            )
        if served == want:
            problems = compare_with_golden(golden, body, classes)
            return HookResult(FAILED if problems else SUCCEEDED, problems, {served: len(instances)})
        want = served  # the other pinned model answered: replay its golden requests next
    return HookResult(FAILED, [f"no answer from the model whose golden requests were sent in {MAX_ATTEMPTS} tries"])


def parse_lifecycle_event(event: Any) -> tuple[str, str]:
    if not isinstance(event, Mapping):
        raise InputError("a CodeDeploy lifecycle event must be a JSON object", field="event")
    deployment_id = event.get("DeploymentId")
    execution_id = event.get("LifecycleEventHookExecutionId")
    if not isinstance(deployment_id, str) or not deployment_id:
        raise InputError("the lifecycle event has no DeploymentId", field="DeploymentId")
    if not isinstance(execution_id, str) or not execution_id:
        raise InputError(
            "the lifecycle event has no LifecycleEventHookExecutionId", field="LifecycleEventHookExecutionId"
        )
    return deployment_id, execution_id


def target_from_deployment(codedeploy: Any, deployment_id: str) -> str | None:
    """'<function>:<TargetVersion>' from the deployment's AppSpec, so the hook validates exactly the version being
    deployed. None if the AppSpec does not say."""
    from . import appspec

    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    spec = appspec.of_deployment(codedeploy, info)
    if spec is None or not spec.function or not spec.target_version:
        return None
    return f"{spec.function}:{spec.target_version}"


def check_target(target: str | None, predict_function: str) -> str:
    """The hook validates only versions of its own predict function."""
    if not target:
        raise ModelOpsError("the deployment's AppSpec names no target function version")
    name = target.rsplit(":", 1)[0].rsplit(":", 1)[-1] if target.startswith("arn:") else target.rsplit(":", 1)[0]
    if name != predict_function.rsplit(":", 1)[-1]:
        raise ModelOpsError(f"the deployment targets {target}, not this stack's predict function {predict_function}")
    return target


def run_hook(event: Any, build_context: Callable[[str], HookContext], codedeploy: Any = None) -> HookResult:
    """Validate and ALWAYS report to CodeDeploy, whatever fails on the way (including build_context,
    which gets the deployment id).

    codedeploy is used for the report when given; otherwise the one in the built context."""
    deployment_id, execution_id = parse_lifecycle_event(event)  # without these ids nobody can be told anything
    try:
        ctx = build_context(deployment_id)
        codedeploy = codedeploy or ctx.codedeploy
        result = validate_new_version(ctx)
    except Exception as exc:  # the hook's own failure still fails the deployment promptly
        logger.exception("pre-traffic validation crashed")
        result = HookResult(FAILED, [f"pre-traffic hook error: {type(exc).__name__}: {exc}"])
    if codedeploy is None:
        from ..adapters.aws import client

        codedeploy = client("codedeploy")
    logger.info("pre-traffic validation %s", result.status, extra={"deployment_id": deployment_id, **result.to_dict()})
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id, lifecycleEventHookExecutionId=execution_id, status=result.status
    )
    return result


def registry_allowed_models(registry: Any, model_name: str) -> Callable[[], set[str]]:
    """The registry's champion and candidate versions (read at validation time)."""
    from ..registry import CANDIDATE, CHAMPION

    def allowed() -> set[str]:
        versions = {registry.get_alias(model_name, alias).version for alias in (CHAMPION, CANDIDATE)}
        return {v for v in versions if v}

    return allowed


def registry_golden_loader(registry: Any, model_name: str) -> Callable[[str], tuple[dict[str, Any], list[Any] | None]]:
    """Golden set and class labels of a model version, read (and integrity-checked) from the registry."""
    from ..core.errors import ArtifactIntegrityError
    from ..model.artifact import GOLDEN_FILE, sha256_bytes

    def load(version: str) -> tuple[dict[str, Any], list[Any] | None]:
        manifest = registry.manifest(model_name, version)
        if not manifest.golden:
            raise ModelOpsError(f"model {model_name}/{version} has no golden set in the registry")
        body, _ = registry.store.get(registry.version_key(model_name, version, GOLDEN_FILE))
        if sha256_bytes(body) != manifest.golden.get("sha256"):
            raise ArtifactIntegrityError(f"model {model_name}/{version}: {GOLDEN_FILE} does not match its sha256")
        return json.loads(body), manifest.classes

    return load
