"""Pre-traffic hook: pass, wrong predictions, invoke error and its own crash, each reporting to CodeDeploy.

moto does not implement CodeDeploy's PutLifecycleEventHookExecutionStatus, so a botocore Stubber on a real
codedeploy client checks the exact report. The "new function version" is a small fake Lambda client with the
get_function_configuration/invoke interface that answers with the real model loaded from the artifact; the
golden sets come from a moto S3 registry.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from modelops.core.errors import InputError, ModelOpsError
from modelops.model.artifact import load_from_dir
from modelops.rollout import hook
from modelops.wiring import hook as hook_wiring
from support.context import LambdaContext
from support.events import load_event
from support.handlers import load_handler

EVENT = load_event("pretraffic_hook")
TARGET = "arn:aws:lambda:us-east-1:123456789012:function:predict:7"


class FakePredictFunction:
    """Answers like the predict function: API Gateway proxy responses computed by the real model."""

    def __init__(
        self,
        model_dir: Path,
        *,
        pinned: str | None = None,
        tamper=None,
        function_error: bool = False,
        status: int = 200,
    ):
        self.model = load_from_dir(model_dir)
        self.pinned = pinned or self.model.manifest.version
        self.tamper = tamper
        self.function_error = function_error
        self.status = status
        self.invocations: list[dict] = []

    def get_function_configuration(self, FunctionName):
        assert FunctionName == TARGET
        return {"Environment": {"Variables": {"MODELOPS_MODEL_VERSION": self.pinned}}}

    def invoke(self, FunctionName, InvocationType, Payload):
        event = json.loads(Payload)
        self.invocations.append(event)
        if self.function_error:
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(b'{"errorMessage": "boom", "errorType": "RuntimeError"}'),
            }
        instances = json.loads(event["body"])["instances"]
        m = self.model
        names = [f["name"] for f in m.manifest.features]
        import numpy as np

        X = np.array([[row[n] for n in names] for row in instances], dtype=float)
        body = {
            "model": {"name": m.manifest.name, "version": m.manifest.version},
            "predictions": m.estimator.predict(X).tolist(),
            "probabilities": [
                dict(zip(m.manifest.classes, p, strict=True)) for p in m.estimator.predict_proba(X).tolist()
            ],
        }
        if self.tamper:
            self.tamper(body)
        if self.status != 200:
            body = {"error": {"code": "model_unavailable", "message": "cannot load model"}}
        return {
            "StatusCode": 200,
            "Payload": io.BytesIO(json.dumps({"statusCode": self.status, "body": json.dumps(body)}).encode()),
        }


@pytest.fixture
def codedeploy():
    client = boto3.client("codedeploy", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub


def expect_report(stub: Stubber, status: str) -> None:
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": "x"},
        {
            "deploymentId": EVENT["DeploymentId"],
            "lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"],
            "status": status,
        },
    )


def make_context(registry, fake, codedeploy_client):
    def build(deployment_id):
        assert deployment_id == EVENT["DeploymentId"]
        return hook.HookContext(
            codedeploy=codedeploy_client,
            lambda_client=fake,
            load_golden=hook.registry_golden_loader(registry, "breast-cancer"),
            target_function=TARGET,
        )

    return build


def test_pass_reports_succeeded(registry, classifier_dir, codedeploy):
    client, stub = codedeploy
    registry.register(classifier_dir)
    fake = FakePredictFunction(classifier_dir)
    expect_report(stub, "Succeeded")
    result = hook.run_hook(EVENT, make_context(registry, fake, client))
    stub.assert_no_pending_responses()
    assert result.status == "Succeeded", result.problems
    golden_rows = json.loads((classifier_dir / "golden.json").read_text())["instances"]
    assert result.checked == {fake.model.manifest.version: len(golden_rows)}
    sent = json.loads(fake.invocations[0]["body"])["instances"]
    assert sent == golden_rows and fake.invocations[0]["httpMethod"] == "POST"


def test_wrong_predictions_report_failed(registry, classifier_dir, codedeploy):
    client, stub = codedeploy
    registry.register(classifier_dir)

    def flip_first(body):
        body["predictions"][0] = "malignant" if body["predictions"][0] == "benign" else "benign"

    expect_report(stub, "Failed")
    result = hook.run_hook(
        EVENT, make_context(registry, FakePredictFunction(classifier_dir, tamper=flip_first), client)
    )
    stub.assert_no_pending_responses()
    assert result.status == "Failed"
    assert any(p.startswith("row 0: prediction") for p in result.problems)


def test_probability_outside_tolerance_reports_failed(registry, classifier_dir, codedeploy):
    client, stub = codedeploy
    registry.register(classifier_dir)

    def nudge(body):
        first = body["probabilities"][3]
        k = next(iter(first))
        first[k] += 1e-3

    expect_report(stub, "Failed")
    result = hook.run_hook(EVENT, make_context(registry, FakePredictFunction(classifier_dir, tamper=nudge), client))
    assert result.status == "Failed" and any("row 3: probabilities" in p for p in result.problems)


def test_model_version_other_than_pinned_fails(registry, classifier_dir, classifier_v2_dir, codedeploy):
    client, stub = codedeploy
    registry.register(classifier_dir)
    registry.register(classifier_v2_dir)
    v2 = json.loads((classifier_v2_dir / "manifest.json").read_text())["version"]
    fake = FakePredictFunction(classifier_dir, pinned=v2)  # pinned to v2 but serves v1
    expect_report(stub, "Failed")
    result = hook.run_hook(EVENT, make_context(registry, fake, client))
    assert result.status == "Failed" and "not the pinned" in result.problems[0]


def test_invoke_error_reports_failed(registry, classifier_dir, codedeploy):
    client, stub = codedeploy
    registry.register(classifier_dir)
    expect_report(stub, "Failed")
    result = hook.run_hook(
        EVENT, make_context(registry, FakePredictFunction(classifier_dir, function_error=True), client)
    )
    stub.assert_no_pending_responses()
    assert result.status == "Failed" and "raised Unhandled" in result.problems[0]


def test_503_from_new_version_reports_failed(registry, classifier_dir, codedeploy):
    client, stub = codedeploy
    registry.register(classifier_dir)
    expect_report(stub, "Failed")
    result = hook.run_hook(EVENT, make_context(registry, FakePredictFunction(classifier_dir, status=503), client))
    assert result.status == "Failed" and "answered 503" in result.problems[0]


def test_own_crash_still_reports_failed(codedeploy):
    client, stub = codedeploy

    def broken_context(deployment_id):
        raise KeyError("MODELOPS_REGISTRY")

    expect_report(stub, "Failed")
    result = hook.run_hook(EVENT, broken_context, codedeploy=client)
    stub.assert_no_pending_responses()
    assert result.status == "Failed" and "KeyError" in result.problems[0]


def test_missing_golden_set_in_registry_reports_failed(registry, classifier_dir, codedeploy):
    """The registry has no such model version: a crash inside validation, reported as Failed."""
    client, stub = codedeploy
    expect_report(stub, "Failed")
    result = hook.run_hook(EVENT, make_context(registry, FakePredictFunction(classifier_dir), client))
    assert result.status == "Failed" and "not found" in result.problems[0]


def test_event_without_ids_is_rejected():
    with pytest.raises(InputError) as err:
        hook.run_hook({"DeploymentId": "d-1"}, lambda deployment_id: None)
    assert err.value.field == "LifecycleEventHookExecutionId"


def test_regression_golden_comparison_uses_tolerance():
    golden = {"predictions": [100.0, 2.5], "tolerance": 1e-6}
    assert hook.compare_with_golden(golden, {"predictions": [100.00000001, 2.5]}, None) == []
    problems = hook.compare_with_golden(golden, {"predictions": [100.0, 2.6]}, None)
    assert len(problems) == 1 and problems[0].startswith("row 1")
    assert hook.compare_with_golden(golden, {"predictions": [1.0]}, None) == [
        "answer has 1 predictions for 2 golden rows"
    ]


def test_handler_reports_through_codedeploy(monkeypatch, codedeploy):
    """The Lambda handler itself: a missing environment is the hook's own crash and is still reported."""
    client, stub = codedeploy
    app = load_handler("pretraffic_hook")
    clients = {"codedeploy": client}
    monkeypatch.setattr(
        app, "wiring", hook_wiring.build(clients=lambda service: clients.get(service) or boto3.client(service))
    )
    monkeypatch.setenv("MODELOPS_PREDICT_FUNCTION", "stack-PredictFunction-x")
    monkeypatch.setenv("MODELOPS_REGISTRY", "s3://modelops-test/registry")
    monkeypatch.setenv("MODELOPS_MODEL_NAME", "breast-cancer")
    stub.add_client_error(
        "get_deployment",
        "DeploymentDoesNotExistException",
        "no such deployment",
        expected_params={"deploymentId": EVENT["DeploymentId"]},
    )
    expect_report(stub, "Failed")
    context = LambdaContext(function_name="CodeDeployHook_predict", memory_limit_in_mb=256)
    out = app.lambda_handler(EVENT, context)
    stub.assert_no_pending_responses()
    assert out["status"] == "Failed" and "DeploymentDoesNotExist" in out["problems"][0]


def test_target_version_comes_from_the_deployment_appspec(codedeploy):
    client, stub = codedeploy
    spec = {
        "version": 0.0,
        "Resources": [
            {
                "PredictFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": "stack-PredictFunction-x",
                        "Alias": "live",
                        "CurrentVersion": "3",
                        "TargetVersion": "4",
                    },
                }
            }
        ],
    }
    stub.add_response(
        "get_deployment",
        {
            "deploymentInfo": {
                "deploymentId": "d-1",
                "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(spec)}},
            }
        },
        {"deploymentId": "d-1"},
    )
    target = hook.target_from_deployment(client, "d-1")
    assert target == "stack-PredictFunction-x:4"
    assert hook.check_target(target, "stack-PredictFunction-x") == target
    with pytest.raises(ModelOpsError, match="not this stack"):
        hook.check_target(target, "other-PredictFunction")
    with pytest.raises(ModelOpsError, match="names no target"):
        hook.check_target(None, "stack-PredictFunction-x")


APPSPEC = {
    "version": 0.0,
    "Resources": [
        {
            "PredictFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Name": "stack-PredictFunction-x",
                    "Alias": "live",
                    "CurrentVersion": "3",
                    "TargetVersion": "4",
                },
            }
        }
    ],
}
APPSPEC_SHA = "9f0e3b1c2d4a5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"


@pytest.mark.parametrize("field", ["appSpecContent", "string"])
def test_appspec_comes_from_the_application_revision_when_get_deployment_has_only_its_hash(codedeploy, field):
    """GetDeployment of a Lambda deployment may return revision.appSpecContent with only the sha256. Public
    production hooks then call GetApplicationRevision with that revision; they read the content from
    revision.string.content or revision.appSpecContent.content, so both shapes are answered here (Stubber checks
    them against botocore's CodeDeploy model)."""
    client, stub = codedeploy
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": APPSPEC_SHA}}
    stub.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": "d-1", "applicationName": "stack-app", "revision": revision}},
        {"deploymentId": "d-1"},
    )
    stub.add_response(
        "get_application_revision",
        {
            "applicationName": "stack-app",
            "revision": {
                "revisionType": "AppSpecContent",
                field: {"content": json.dumps(APPSPEC), "sha256": APPSPEC_SHA},
            },
            "revisionInfo": {"description": "SAM"},
        },
        {"applicationName": "stack-app", "revision": revision},
    )
    assert hook.target_from_deployment(client, "d-1") == "stack-PredictFunction-x:4"
    stub.assert_no_pending_responses()


def test_rollout_status_reads_the_appspec_the_same_way(codedeploy):
    from modelops.rollout import appspec

    client, stub = codedeploy
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": APPSPEC_SHA}}
    stub.add_response(
        "get_application_revision",
        {
            "applicationName": "a",
            "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(APPSPEC)}},
        },
        {"applicationName": "a", "revision": revision},
    )
    spec = appspec.of_deployment(client, {"deploymentId": "d-1", "applicationName": "a", "revision": revision})
    assert (spec.current_version, spec.target_version) == ("3", "4")
    assert appspec.parse("not json: [") is None


def test_a_model_that_is_neither_champion_nor_candidate_fails_before_any_request(registry, classifier_dir, codedeploy):
    """A stale pin or parameter would put an older model back: the hook refuses it without invoking the version."""
    client, stub = codedeploy
    registry.register(classifier_dir)
    fake = FakePredictFunction(classifier_dir)
    expect_report(stub, "Failed")

    def build(deployment_id):
        ctx = make_context(registry, fake, client)(deployment_id)
        ctx.allowed_models = lambda: {"20990101T000000000Z-newer1"}
        return ctx

    result = hook.run_hook(EVENT, build)
    stub.assert_no_pending_responses()
    assert result.status == "Failed" and fake.invocations == []
    assert "registry allows 20990101T000000000Z-newer1" in result.problems[0]


def test_allowed_models_are_the_registry_champion_and_candidate(registry, classifier_dir, classifier_v2_dir):
    from modelops.registry import CANDIDATE, CHAMPION

    allowed = hook.registry_allowed_models(registry, "breast-cancer")
    assert allowed() == set()  # no champion yet: nothing may be served
    v1 = registry.register(classifier_dir).version
    v2 = registry.register(classifier_v2_dir).version
    registry.set_alias("breast-cancer", CHAMPION, v1)
    assert allowed() == {v1}
    registry.set_alias("breast-cancer", CANDIDATE, v2)
    assert allowed() == {v1, v2}


def test_a_stack_resolving_another_stacks_pin_fails_the_hook(registry, classifier_dir, codedeploy):
    from modelops.rollout.deploy import PinNames, require_own_pin

    client, stub = codedeploy
    registry.register(classifier_dir)
    fake = FakePredictFunction(classifier_dir)
    expect_report(stub, "Failed")
    prod = {
        "Parameters": [
            {"ParameterKey": "ModelVersion", "ParameterValue": "/modelops/modelops-dev/breast-cancer/champion"}
        ]
    }

    def build(deployment_id):
        ctx = make_context(registry, fake, client)(deployment_id)
        ctx.check_stack = lambda: require_own_pin(prod, PinNames("modelops-prod", "breast-cancer")) and None
        return ctx

    result = hook.run_hook(EVENT, build)
    assert result.status == "Failed" and "not one of its own pins" in result.problems[0] and fake.invocations == []


class ChallengerFirstABFunction:
    """An A/B predict version whose random assignment sends the first two requests to the challenger."""

    def __init__(self, champion_dir: Path, challenger_dir: Path):
        self.a = FakePredictFunction(champion_dir)
        self.b = FakePredictFunction(challenger_dir)
        self.calls = 0

    def get_function_configuration(self, FunctionName):
        return {
            "Environment": {
                "Variables": {
                    "MODELOPS_MODEL_VERSION": self.a.model.manifest.version,
                    "MODELOPS_CHALLENGER_VERSION": self.b.model.manifest.version,
                }
            }
        }

    def invoke(self, FunctionName, InvocationType, Payload):
        self.calls += 1
        return (self.b if self.calls <= 2 else self.a).invoke(FunctionName, InvocationType, Payload)


def test_ab_version_is_validated_against_whichever_model_answers(
    registry, classifier_dir, classifier_v2_dir, codedeploy
):
    client, stub = codedeploy
    registry.register(classifier_dir)
    registry.register(classifier_v2_dir)
    fake = ChallengerFirstABFunction(classifier_dir, classifier_v2_dir)
    expect_report(stub, "Succeeded")
    result = hook.run_hook(EVENT, make_context(registry, fake, client))
    assert result.status == "Succeeded", result.problems
    # the challenger answered the champion's rows first, so its own golden rows were sent next
    assert fake.calls == 2 and result.checked == {fake.b.model.manifest.version: 20}


def test_ab_version_answering_off_target_every_time_fails_after_bounded_tries(
    registry, classifier_dir, classifier_v2_dir, codedeploy
):
    """Each answer comes from the model whose golden rows were not sent: the hook gives up and fails."""
    client, stub = codedeploy
    registry.register(classifier_dir)
    registry.register(classifier_v2_dir)
    fake = ChallengerFirstABFunction(classifier_dir, classifier_v2_dir)
    fake.invoke = lambda FunctionName, InvocationType, Payload, f=fake: (  # type: ignore[method-assign]
        setattr(f, "calls", f.calls + 1) or (f.b if f.calls % 2 else f.a).invoke(FunctionName, InvocationType, Payload)
    )
    expect_report(stub, "Failed")
    result = hook.run_hook(EVENT, make_context(registry, fake, client))
    assert result.status == "Failed" and "tries" in result.problems[0] and fake.calls == hook.MAX_ATTEMPTS
