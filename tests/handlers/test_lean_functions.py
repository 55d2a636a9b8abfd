"""Functions without the ML runtime layer: template.yaml gives the feedback function and the pre-traffic hook
only the modelops layer, so neither may import numpy, scipy, scikit-learn, joblib or pandas on any path.

Each is run in a fresh process where those packages cannot be imported (tests/support/numpy_free_runner.py): its app.py
is loaded and a representative request goes through the real handler against moto S3 holding a model registered
by the real registry. A new import of an ML package anywhere on those paths fails these tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modelops.capture import feedback as fb
from samtranslator.yaml_helper import yaml_parse
from support.aws import BUCKET
from support.feedback import EVENT_REQUEST_ID, feedback_event
from support.paths import ROOT

RUNNER = ROOT / "tests" / "support" / "numpy_free_runner.py"
ML_LAYER = {"Ref": "MLRuntimeLayer"}
MODELOPS_LAYER = {"Ref": "ModelOpsLayer"}
LEAN = {"FeedbackFunction": "feedback", "PreTrafficHookFunction": "pretraffic_hook"}
HOOK_EVENT = json.loads((ROOT / "events" / "pretraffic_hook.json").read_text())
PREDICT_FUNCTION = "stack-PredictFunction-x"


def functions() -> dict[str, dict[str, Any]]:
    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    return {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}


def without_ml_layer() -> dict[str, str]:
    """Logical id -> functions/ directory of every function the template gives no ML runtime layer."""
    return {name: Path(props["CodeUri"]).name for name, props in functions().items() if ML_LAYER not in props["Layers"]}


def run(spec: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / f"spec-{spec['function']}-{spec['scenario']}.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "modelops"), str(ROOT)])}
    env.pop("MODELOPS_REGISTRY", None)
    return subprocess.run(
        [sys.executable, str(RUNNER), str(path)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def output_of(done: subprocess.CompletedProcess) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])  # Powertools logs go to stdout before it
    assert out["imported"] == []
    return out


def registry_objects(s3: Any, tmp_path: Path) -> Path:
    """Everything in the test bucket, as files (path = key) for the runner to seed its moto S3 with."""
    root = tmp_path / "objects"
    for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
        target = root / item["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
    return root


def test_only_the_feedback_function_and_the_hook_go_without_the_ml_runtime_layer():
    assert without_ml_layer() == LEAN
    for name, props in functions().items():
        assert MODELOPS_LAYER in props["Layers"], name
        if name not in LEAN:
            assert ML_LAYER in props["Layers"], name


@pytest.mark.parametrize("function", sorted(without_ml_layer().values()))
def test_a_function_without_the_ml_layer_loads_without_numpy(function, tmp_path):
    output_of(run({"function": function, "scenario": "import"}, tmp_path))


def test_the_runner_really_refuses_numpy(tmp_path):
    """The predict function needs numpy: under the runner its app.py must fail to load, naming the package."""
    done = run({"function": "predict", "scenario": "import"}, tmp_path)
    assert done.returncode != 0
    assert "is not importable without the ML runtime layer" in done.stderr


def test_feedback_stores_a_label_and_checks_its_class_without_numpy(s3, registry, classifier_dir, tmp_path):
    manifest = registry.register(classifier_dir)
    spec = {
        "function": "feedback",
        "scenario": "feedback",
        "bucket": BUCKET,
        "objects": str(registry_objects(s3, tmp_path)),
        "env": {
            "MODELOPS_DATA_URI": f"s3://{BUCKET}/data",
            "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
            "MODELOPS_MODEL_NAME": manifest.name,
            "MODELOPS_MODEL_VERSION": manifest.version,
        },
        "events": [feedback_event(actual="malignnt"), feedback_event(actual="malignant")],
    }
    out = output_of(run(spec, tmp_path))
    typo, stored = out["answers"]
    assert typo["statusCode"] == 400 and json.loads(typo["body"])["error"]["field"] == "actual"
    assert stored["statusCode"] == 202, stored
    (record,) = [fb.FeedbackRecord(**r) for r in out["stored"]]
    assert (record.request_id, record.actual) == (EVENT_REQUEST_ID, "malignant")
    assert json.loads(stored["body"])["feedback_id"] == record.feedback_id


def golden_answer(classifier_dir: Path, version: str) -> dict[str, Any]:
    """The 200 proxy response a correct new predict version gives for the golden requests."""
    golden = json.loads((classifier_dir / "golden.json").read_text())
    body = {
        "model": {"version": version},
        "predictions": golden["predictions"],
        "probabilities": golden["probabilities"],
    }
    return {"statusCode": 200, "body": json.dumps(body)}


@pytest.mark.parametrize("wrong", [False, True], ids=["golden-answer", "one-wrong-prediction"])
def test_pretraffic_hook_validates_a_version_without_numpy(s3, registry, classifier_dir, tmp_path, wrong):
    manifest = registry.register(classifier_dir)
    registry.set_alias(manifest.name, "champion", manifest.version)  # the hook refuses a version that is not
    answer = golden_answer(classifier_dir, manifest.version)
    if wrong:
        body = json.loads(answer["body"])
        body["predictions"][0] = next(c for c in manifest.classes if c != body["predictions"][0])
        answer = {**answer, "body": json.dumps(body)}
    appspec = {
        "version": 0.0,
        "Resources": [
            {
                "PredictFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": PREDICT_FUNCTION,
                        "Alias": "live",
                        "CurrentVersion": "3",
                        "TargetVersion": "4",
                    },
                }
            }
        ],
    }
    spec = {
        "function": "pretraffic_hook",
        "scenario": "pretraffic_hook",
        "bucket": BUCKET,
        "objects": str(registry_objects(s3, tmp_path)),
        "env": {
            "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
            "MODELOPS_MODEL_NAME": manifest.name,
            "MODELOPS_PREDICT_FUNCTION": PREDICT_FUNCTION,
        },
        "event": HOOK_EVENT,
        "appspec": appspec,
        "pinned": manifest.version,
        "answer": answer,
        "expect_status": "Failed" if wrong else "Succeeded",
    }
    out = output_of(run(spec, tmp_path))
    (result,) = out["answers"]
    golden = json.loads((classifier_dir / "golden.json").read_text())
    assert out["sent"] == [golden["instances"]]
    if wrong:
        assert result["status"] == "Failed" and result["problems"][0].startswith("row 0: prediction")
    else:
        assert result == {
            "status": "Succeeded",
            "problems": [],
            "checked": {manifest.version: len(golden["instances"])},
        }
