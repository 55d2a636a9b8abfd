"""`modelops ab start|stop|promote|report` against a moto S3 registry. The split goes to a local file
(the store the predict function reads locally); the AppConfig publisher is checked with a botocore Stubber
because moto's AppConfig has no StartDeployment."""

from __future__ import annotations

import json

import boto3
import numpy as np
from botocore.stub import ANY, Stubber
from modelops.capture import feedback as fb
from modelops.capture.records import PredictionLog, prediction_record
from modelops.experiments import assignment as experiment
from modelops.experiments.control import AppConfigPublisher, AppConfigTarget

from modelops_cli import main

BUCKET = "modelops-test"
REG = f"s3://{BUCKET}/registry"


def register_two(registry, classifier_dir, classifier_v2_dir):
    a = registry.register(classifier_dir).version
    b = registry.register(classifier_v2_dir).version
    registry.set_alias("breast-cancer", "champion", a)
    return a, b


def test_start_stop_promote_with_local_split(registry, classifier_dir, classifier_v2_dir, tmp_path, capsys):
    a, b = register_two(registry, classifier_dir, classifier_v2_dir)
    flags = tmp_path / "flags.json"
    common = ["--model", "breast-cancer", "--local", str(flags)]
    assert main(["--registry", REG, "--json", "ab", "start", b, "--split", "25", *common]) == 0
    assert experiment.challenger_percent(json.loads(flags.read_text())) == 25
    assert registry.get_alias("breast-cancer", "challenger").version == b
    assert main(["--registry", REG, "--json", "ab", "stop", *common]) == 0
    assert experiment.challenger_percent(json.loads(flags.read_text())) == 0
    assert main(["--registry", REG, "--json", "ab", "promote", *common]) == 0
    assert registry.get_alias("breast-cancer", "champion").version == b
    events = [e["event"] for e in registry.history("breast-cancer")]
    assert events.count("ab_started") == 1 and "ab_stopped" in events and "ab_promoted" in events
    capsys.readouterr()
    # starting B = the champion again is refused with one line
    assert main(["--registry", REG, "ab", "start", b, *common]) == 1
    assert "already the champion" in capsys.readouterr().err


def test_bad_split_and_missing_store_are_one_line_errors(registry, classifier_dir, classifier_v2_dir, capsys):
    _, b = register_two(registry, classifier_dir, classifier_v2_dir)
    assert (
        main(["--registry", REG, "ab", "start", b, "--split", "150", "--model", "breast-cancer", "--local", "x"]) == 1
    )
    assert "--split" in capsys.readouterr().err
    assert main(["--registry", REG, "ab", "start", b, "--model", "breast-cancer"]) == 1
    err = capsys.readouterr().err
    assert "--appconfig" in err and "Traceback" not in err


def test_appconfig_publisher_creates_version_and_deploys():
    appconfig = boto3.client("appconfig", region_name="us-east-1")
    doc = experiment.flag_document(10)
    with Stubber(appconfig) as stub:
        stub.add_response(
            "create_hosted_configuration_version",
            {"VersionNumber": 4},
            {
                "ApplicationId": "app1",
                "ConfigurationProfileId": "prof1",
                "Content": json.dumps(doc).encode(),
                "ContentType": "application/json",
                "Description": ANY,
            },
        )
        stub.add_response(
            "start_deployment",
            {"DeploymentNumber": 9},
            {
                "ApplicationId": "app1",
                "EnvironmentId": "env1",
                "DeploymentStrategyId": "AppConfig.AllAtOnce",
                "ConfigurationProfileId": "prof1",
                "ConfigurationVersion": "4",
                "Description": ANY,
            },
        )
        out = AppConfigPublisher(AppConfigTarget("app1", "env1", "prof1"), appconfig).publish(doc, "A/B 10%")
        stub.assert_no_pending_responses()
    assert out == {"configuration_version": 4, "deployment": 9}


def test_report_from_captures_and_feedback(registry, classifier_dir, classifier_v2_dir, s3, tmp_path, capsys):
    a, b = register_two(registry, classifier_dir, classifier_v2_dir)
    rng = np.random.default_rng(3)
    records, store = [], fb.FeedbackStore(BUCKET, "data", s3=s3)
    for i in range(400):
        variant = "B" if i % 4 == 0 else "A"
        actual = "malignant" if rng.random() < 0.4 else "benign"
        right = rng.random() < (0.95 if variant == "B" else 0.75)
        pred = actual if right else ("benign" if actual == "malignant" else "malignant")
        records.append(
            prediction_record(
                request_id=f"r{i}",
                model_version=b if variant == "B" else a,
                variant=variant,
                predictions=[pred],
                scores=[0.8 if pred == "malignant" else 0.2],
                latency_ms=2.0 + (i % 7),
            )
        )
        store.append(actual, request_id=f"r{i}")
    PredictionLog(BUCKET, "data", s3=s3).append(records)
    out_dir = tmp_path / "report"
    assert (
        main(
            [
                "--registry",
                REG,
                "ab",
                "report",
                "--model",
                "breast-cancer",
                "--data",
                f"s3://{BUCKET}/data",
                "--since",
                "1h",
                "--out",
                str(out_dir),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "verdict: B better" in text
    report = json.loads((out_dir / "ab-report.json").read_text())
    assert report["variants"]["B"]["requests"] == 100 and report["variants"]["A"]["labelled"] == 300
    assert (out_dir / "ab-report.png").read_bytes()[:4] == b"\x89PNG"


def test_report_without_captures_says_so(registry, classifier_dir, classifier_v2_dir, tmp_path, capsys):
    register_two(registry, classifier_dir, classifier_v2_dir)
    assert (
        main(
            [
                "--registry",
                REG,
                "ab",
                "report",
                "--model",
                "breast-cancer",
                "--data",
                f"s3://{BUCKET}/data",
                "--out",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "no captured predictions" in capsys.readouterr().err
    assert (
        main(
            [
                "--registry",
                REG,
                "ab",
                "report",
                "--model",
                "breast-cancer",
                "--data",
                f"s3://{BUCKET}/data",
                "--since",
                "last week",
            ]
        )
        == 1
    )
    assert "is not a time" in capsys.readouterr().err
