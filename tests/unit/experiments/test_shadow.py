"""Shadow testing end to end on moto S3: the predict function's own gateway serves the champion with capture on,
its capture lines are delivered to the data prefix as Firehose writes them (JSON lines), and `modelops shadow run`
scores them with a candidate that disagrees with the champion exactly on the rows where f2 is above a threshold.
The expected agreement, confusion counts and top feature follow from that rule and the champion's own answers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from modelops.adapters.objectstore import open_location
from modelops.capture.records import PredictionLog
from modelops.experiments import shadow
from support import shadow_models
from support.aws import BUCKET
from support.paths import ROOT
from support.shadow import DATA, MODEL, REGISTRY, serve_and_capture

from modelops_cli import main


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def versions(registry):
    return shadow_models.register_pair(registry, MODEL)


def test_shadow_run_measures_agreement_confusion_and_the_feature_behind_the_disagreement(
    registry, s3, tmp_path, capsys, versions
):
    champion_version, candidate_version, threshold = versions
    sent, answers = serve_and_capture(registry, s3, tmp_path, capsys, champion_version)
    flipped = sent[:, 2] > threshold
    assert 0 < flipped.sum() < len(sent)
    code, out, err = cli(
        capsys, "--json", "shadow", "run", "--version", candidate_version, "--model", MODEL,
        "--data", DATA, "--registry", REGISTRY, "--since", "1h",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"]["compared"] == len(sent)
    assert report["champion_versions"] == {champion_version: len(sent)}
    assert report["agreement"]["agree"] == int((~flipped).sum())
    assert report["agreement"]["rate"] == pytest.approx((~flipped).mean())
    other = {"yes": "no", "no": "yes"}
    expected = Counter((a, other[a] if f else a) for a, f in zip(answers, flipped.tolist(), strict=True))
    for a in ("no", "yes"):
        for b in ("no", "yes"):
            assert report["confusion"]["counts"][a][b] == expected.get((a, b), 0), (a, b)
    assert report["features"]["top"][0]["feature"] == "f2"
    assert report["features"]["top"][0]["disagree_mean"] > threshold > report["features"]["top"][0]["agree_mean"]
    # unflipped rows have the champion's own probability (six decimals): the median |delta| is rounding only
    assert report["difference"]["abs"]["p50"] < 1e-5
    assert report["difference"]["abs"]["max"] > 0.1
    lat = report["latency"]
    assert lat["champion_requests_with_latency"] == 40 and lat["candidate_ms_per_row"] > 0
    stored = report["stored"]
    assert stored["json"].startswith(f"{DATA}/shadow/{MODEL}/{candidate_version}/")
    store, _ = open_location(DATA, s3)
    saved = json.loads(store.get(stored["json"][len(f"s3://{BUCKET}/") :])[0])
    assert saved["chart"] == stored["png"] and saved["agreement"] == report["agreement"]
    png = store.get(stored["png"][len(f"s3://{BUCKET}/") :])[0]
    assert png.startswith(b"\x89PNG")


def test_malformed_and_oversized_capture_records_are_skipped_and_counted(registry, s3, tmp_path, capsys, versions):
    champion_version, candidate_version, _ = versions
    sent, _ = serve_and_capture(registry, s3, tmp_path, capsys, champion_version, requests=4, rows=3)
    now_ms = int(time.time() * 1000)
    base = {"capture": True, "at": now_ms, "model_version": champion_version, "variant": "A", "status": 200}
    row = dict(zip(shadow_models.FEATURES, [0.1, 0.2, 0.3, 0.4], strict=True))
    hostile = [
        "not json at all",
        json.dumps({**base, "request_id": "short", "instances": [row], "predictions": ["no", "yes"]}),
        json.dumps({**base, "request_id": "not-a-row", "instances": ["x"], "predictions": ["no"]}),
        json.dumps({**base, "request_id": "bigint", "instances": [{**row, "f0": 10**40}], "predictions": ["no"]}),
        json.dumps({**base, "request_id": "huge", "instances": [{**row, "pad": "x" * 5000}], "predictions": ["no"]}),
        json.dumps({**base, "request_id": "text", "instances": [{**row, "f1": "abc"}], "predictions": ["no"]}),
        # fields of the wrong type, which the capture reader skips and counts instead of failing on
        json.dumps({**base, "request_id": "status", "status": "abc", "instances": [row], "predictions": ["no"]}),
        json.dumps(
            {**base, "request_id": "proba", "probabilities": [["x"]], "instances": [row], "predictions": ["no"]}
        ),
        json.dumps({**base, "request_id": "scalar", "instances": [row], "predictions": 5}),
        json.dumps(
            {**base, "model_version": None, "request_id": "no-version", "instances": [row], "predictions": ["no"]}
        ),
        # a forged part claiming a billion rows is read as the one row it holds, not allocated for
        json.dumps(
            {
                **base,
                "request_id": "part",
                "part": 1,
                "parts": 2,
                "rows": 10**9,
                "instances": [row],
                "predictions": ["no"],
            }
        ),
    ]
    day = time.strftime("%Y-%m-%d", time.gmtime())
    s3.put_object(Bucket=BUCKET, Key=f"data/captures/date={day}/delivery-2.jsonl", Body="\n".join(hostile) + "\n")
    model = registry.load(MODEL, candidate_version)
    store, prefix = open_location(DATA, s3)
    report = shadow.run(model, PredictionLog(store, prefix), since=time.time() - 3600, until=time.time() + 60,
                        max_line_bytes=2048)  # fmt: skip
    skipped = report["rows"]["skipped"]
    assert skipped["malformed capture line (records)"] == 5  # not JSON, status, proba, scalar, no-version
    assert skipped["malformed record (records)"] == 1
    assert skipped["malformed row"] == 1
    assert skipped["row inputs not serialisable"] == 1
    assert skipped["row inputs over the batch line bound"] == 1
    assert report["rows"]["rejected_by_candidate"] == 1  # "abc" for a number: the batch parser's own reason
    assert any("f1" in reason for reason in report["rows"]["rejection_reasons"])
    assert report["rows"]["compared"] == len(sent) + 1  # the forged part's one row


def test_empty_window_is_a_clear_one_line_error(registry, s3, capsys, versions):
    _, candidate_version, _ = versions
    code, _, err = cli(
        capsys, "shadow", "run", "--version", candidate_version, "--model", MODEL, "--data", DATA,
        "--registry", REGISTRY,
    )  # fmt: skip
    assert code == 1
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "no captured champion rows" in lines[0] and "capture on" in lines[0], err


def test_unknown_version_is_a_one_line_error_with_exit_2(registry, s3, capsys, versions):
    code, _, err = cli(
        capsys, "shadow", "run", "--version", "20990101T000000000Z-abcdef", "--model", MODEL, "--data", DATA,
        "--registry", REGISTRY,
    )  # fmt: skip
    assert code == 2
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "20990101T000000000Z-abcdef" in lines[0] and "not found" in lines[0], err


def test_dry_run_writes_nothing(registry, s3, tmp_path, capsys, versions):
    champion_version, candidate_version, _ = versions
    serve_and_capture(registry, s3, tmp_path, capsys, champion_version, requests=3, rows=2)
    code, out, err = cli(
        capsys, "shadow", "run", "--version", candidate_version, "--model", MODEL, "--data", DATA,
        "--registry", REGISTRY, "--dry-run", "--out", str(tmp_path / "local"),
    )  # fmt: skip
    assert code == 0, err
    assert "agreement" in out and "dry run: nothing written" in out
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="data/shadow/").get("KeyCount") == 0
    assert not (tmp_path / "local").exists()


def test_the_predict_function_never_imports_shadow():
    """The champion's request path adds nothing: importing the predict handler loads no shadow code, and no module
    it loads from modelops mentions it."""
    code = (
        "import sys, runpy; sys.path[:0] = ['functions/predict', 'layers/modelops'];"
        "import app; mods = [m for m in sys.modules if m.startswith('modelops')];"
        "print('\\n'.join(mods))"
    )
    env = {"MODELOPS_MODEL_DIR": "/nonexistent", "POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    modules = result.stdout.split()
    assert "modelops.serving.fastpath" in modules or any(m.startswith("modelops.serving") for m in modules)
    assert not [m for m in modules if "shadow" in m]
    for name in modules:
        spec = sys.modules.get(name)
        path = getattr(spec, "__file__", None)
        if path and name.startswith("modelops"):
            assert "shadow" not in Path(path).read_text(), name


def test_regression_candidate_is_compared_on_its_predictions(registry, s3, tmp_path, capsys):
    """A regressor shifted by exactly 1.0 where f2 is above a threshold: |delta| is 1 there and 0 elsewhere."""
    from modelops import register
    from sklearn.linear_model import LinearRegression

    X, _ = shadow_models.data()
    y = X[:, 0] + 2 * X[:, 1]
    base = LinearRegression().fit(X, y)
    features = shadow_models.FEATURES
    champion = register(
        base, X, y, name=MODEL, registry=registry, alias="champion", feature_names=features, check=False
    )
    shifted = shadow_models.ShiftAbove(base, feature=2, threshold=0.8).fit(X, y)
    candidate = register(shifted, X, y, name=MODEL, registry=registry, feature_names=features, check=False)
    sent, _ = serve_and_capture(registry, s3, tmp_path, capsys, champion.version, requests=10, rows=4)
    model = registry.load(MODEL, candidate.version)
    store, prefix = open_location(DATA, s3)
    now = time.time()
    report = shadow.run(model, PredictionLog(store, prefix), since=now - 3600, until=now + 60)
    above = sent[:, 2] > 0.8
    assert report["rows"]["compared"] == len(sent) and "confusion" not in report
    assert report["agreement"]["agree"] == int((~above).sum())
    assert report["difference"]["abs"]["max"] == pytest.approx(1.0)
    assert report["difference"]["mean_signed"] == pytest.approx(above.mean())
    assert report["features"]["top"][0]["feature"] == "f2"


def test_three_classes_are_compared_class_by_class(registry, s3, tmp_path, capsys):
    """FlipAbove reverses the three class probabilities where f2 is above the threshold: a and c swap, b keeps
    its probability, so b's own |delta| stays at rounding while a's and c's do not."""
    from modelops import register
    from sklearn.linear_model import LogisticRegression

    X, _ = shadow_models.data()
    y = np.select([X[:, 0] < 1 / 3, X[:, 0] < 2 / 3], ["a", "b"], "c")
    base = LogisticRegression(C=100).fit(X, y)
    features = shadow_models.FEATURES
    champion = register(
        base, X, y, name=MODEL, registry=registry, alias="champion", feature_names=features, check=False
    )
    threshold = champion.baseline["f2"]["edges"][6]
    flip = shadow_models.FlipAbove(base, feature=2, threshold=threshold).fit(X, y)
    candidate = register(flip, X, y, name=MODEL, registry=registry, feature_names=features, check=False)
    sent, answers = serve_and_capture(registry, s3, tmp_path, capsys, champion.version, requests=20, rows=5)
    model = registry.load(MODEL, candidate.version)
    store, prefix = open_location(DATA, s3)
    now = time.time()
    report = shadow.run(model, PredictionLog(store, prefix), since=now - 3600, until=now + 60)
    flipped = sent[:, 2] > threshold
    swap = {"a": "c", "b": "b", "c": "a"}
    expected = Counter((a, swap[a] if f else a) for a, f in zip(answers, flipped.tolist(), strict=True))
    assert {(a, b): n for a, row in report["confusion"]["counts"].items() for b, n in row.items() if n} == dict(
        expected
    )
    assert report["agreement"]["agree"] == sum(n for (a, b), n in expected.items() if a == b)
    by_class = report["difference_by_class"]
    assert by_class["b"]["rows"] == len(sent) and by_class["b"]["max"] < 1e-5
    assert by_class["a"]["max"] > 0.1 and by_class["c"]["max"] > 0.1
    assert report["difference"]["of"] == "largest per-class probability change"
    assert report["difference"]["abs"]["max"] == pytest.approx(max(by_class["a"]["max"], by_class["c"]["max"]))
