"""POST /predict through the real lambda_handler with API Gateway REST proxy events: answers, every
client error status, XML, limits, metrics and capture lines. Models come from the session fixtures
(MODELOPS_MODEL_DIR); no AWS is involved."""

from __future__ import annotations

import functools
import json
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from modelops.model.artifact import load_from_dir
from support.api import invoke, load_event, proxy_event, serve_model


@pytest.fixture
def serve(monkeypatch):
    """Start the handler on a model directory with extra environment; returns the handler module."""
    return functools.partial(serve_model, monkeypatch)


@pytest.fixture
def clf(serve, classifier_dir):
    return serve(classifier_dir)


@pytest.fixture(scope="module")
def golden(classifier_dir):
    return json.loads((classifier_dir / "golden.json").read_text())


def post(app, body=None, **kwargs):
    return invoke(app, proxy_event("POST", "/predict", body, **kwargs))


def test_instances_answer_matches_the_model(clf, classifier_dir, golden):
    loaded = load_from_dir(classifier_dir)
    rows = golden["instances"][:5]
    status, headers, body = post(clf, {"instances": rows}, request_id="req-42")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert body["model"] == {"name": "breast-cancer", "version": loaded.manifest.version}
    assert body["variant"] == "A"
    assert body["request_id"] == "req-42"
    assert body["predictions"] == golden["predictions"][:5]
    assert [list(p) for p in body["probabilities"]] == [["benign", "malignant"]] * 5
    expected = np.array(golden["probabilities"][:5])
    got = np.array([[p["benign"], p["malignant"]] for p in body["probabilities"]])
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_columnar_form_gives_the_same_answer_in_any_column_order(clf, golden):
    rows = golden["instances"][:3]
    columns = list(reversed(list(rows[0])))
    _, _, by_rows = post(clf, {"instances": rows})
    status, _, by_columns = post(clf, {"columns": columns, "data": [[r[c] for c in columns] for r in rows]})
    assert status == 200
    assert by_columns["predictions"] == by_rows["predictions"]
    assert by_columns["probabilities"] == by_rows["probabilities"]


def test_regressor_answers_numbers_without_probabilities(serve, regressor_dir):
    app = serve(regressor_dir)
    golden = json.loads((regressor_dir / "golden.json").read_text())
    status, _, body = post(app, {"instances": golden["instances"][:4]})
    assert status == 200
    assert "probabilities" not in body
    np.testing.assert_allclose(body["predictions"], golden["predictions"][:4], rtol=1e-9)


def test_integer_values_and_extra_top_level_fields_are_accepted(clf, golden):
    row = {k: (round(v) if i % 2 else v) for i, (k, v) in enumerate(golden["instances"][0].items())}
    status, _, body = post(clf, {"instances": [row], "entity_id": "customer-7"})
    assert status == 200 and len(body["predictions"]) == 1


def test_base64_encoded_body(clf, golden):
    status, _, body = post(clf, {"instances": golden["instances"][:2]}, base64_body=True)
    assert status == 200 and len(body["predictions"]) == 2


def test_xml_answer_holds_the_same_data(clf, golden):
    _, _, as_json = post(clf, {"instances": golden["instances"][:2]})
    status, headers, text = post(
        clf, {"instances": golden["instances"][:2]}, headers={"Accept": "application/xml"}, request_id="xml-1"
    )
    assert status == 200 and headers["content-type"] == "application/xml"
    root = ET.fromstring(text.encode())
    assert root.tag == "response"
    assert root.findtext("model/version") == as_json["model"]["version"]
    assert [i.text for i in root.findall("predictions/item")] == as_json["predictions"]
    first = root.findall("probabilities/item")[0]
    assert float(first.findtext("malignant")) == pytest.approx(as_json["probabilities"][0]["malignant"])
    assert root.findtext("request_id") == "xml-1"


def test_xml_error(clf):
    status, headers, text = post(clf, {"instances": []}, headers={"Accept": "text/xml"})
    assert status == 400 and headers["content-type"] == "application/xml"
    root = ET.fromstring(text.encode())
    assert root.findtext("error/code") == "empty_input"
    assert root.findtext("error/field") == "instances"


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (None, "application/json"),
        ("application/xml;q=0.9, application/json;q=0.5", "application/xml"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/xml"),
    ],
)
def test_content_negotiation(clf, golden, accept, expected):
    status, headers, _ = post(clf, {"instances": golden["instances"][:1]}, headers={"Accept": accept})
    assert status == 200 and headers["content-type"] == expected


@pytest.mark.parametrize("accept", ["text/html", "text/csv", "application/json;q=0"])
def test_unacceptable_accept_is_406(clf, golden, accept):
    status, _, body = post(clf, {"instances": golden["instances"][:1]}, headers={"Accept": accept})
    assert status == 406
    assert body["error"]["code"] == "not_acceptable" and body["error"]["field"] == "Accept"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_body_is_415(clf, golden, content_type):
    status, _, body = post(clf, {"instances": golden["instances"][:1]}, headers={"Content-Type": content_type})
    assert status == 415 and body["error"]["field"] == "Content-Type"


def _row(golden, **changes):
    row = dict(golden["instances"][0])
    for key, value in changes.items():
        if value is KeyError:
            row.pop(key)
        else:
            row[key] = value
    return row


@pytest.mark.parametrize(
    "make_body, code, field",
    [
        (lambda g: {"instances": [_row(g, mean_radius=KeyError)]}, "missing_feature", "instances[0].mean_radius"),
        (lambda g: {"instances": [_row(g, colour=1.0)]}, "unknown_feature", "instances[0].colour"),
        (lambda g: {"instances": [_row(g, mean_texture="high")]}, "wrong_type", "instances[0].mean_texture"),
        (lambda g: {"instances": [_row(g, mean_texture=True)]}, "wrong_type", "instances[0].mean_texture"),
        (lambda g: {"instances": [_row(g, mean_texture=None)]}, "wrong_type", "instances[0].mean_texture"),
        (lambda g: {"instances": [_row(g, mean_texture=[1.0])]}, "wrong_type", "instances[0].mean_texture"),
        (lambda g: {"instances": [g["instances"][0], "row"]}, "invalid_input", "instances[1]"),
        (lambda g: {"instances": []}, "empty_input", "instances"),
        (lambda g: {"instances": {"a": 1}}, "invalid_input", "instances"),
        (lambda g: {"rows": []}, "missing_field", "instances"),
        (lambda g: [1, 2], "invalid_body", "body"),
        (lambda g: {"columns": ["mean_radius"]}, "missing_field", "data"),
        (lambda g: {"columns": list(g["instances"][0]), "data": [[1.0]]}, "invalid_input", "data[0]"),
        (
            lambda g: {"columns": list(g["instances"][0])[1:], "data": [[1.0] * 29]},
            "missing_feature",
            "columns.mean_radius",
        ),
        (lambda g: {"instances": g["instances"][:1], "columns": ["x"], "data": [[1]]}, "invalid_body", "instances"),
    ],
)
def test_bad_rows_are_400_naming_the_field(clf, golden, make_body, code, field):
    status, _, body = post(clf, make_body(golden))
    assert status == 400, body
    assert body["error"]["code"] == code
    assert body["error"]["field"] == field
    assert body["error"]["message"]


@pytest.mark.parametrize(
    "raw, code",
    [
        ('{"instances": [', "malformed_json"),
        ("", "malformed_json"),
        ("not json", "malformed_json"),
        ('{"instances": [{"mean_radius": NaN}]}', "malformed_json"),
        ('{"instances": [{"mean_radius": Infinity}]}', "malformed_json"),
        ('{"instances": [{"mean_radius": 1e400}]}', "not_finite"),
    ],
)
def test_malformed_json_and_non_finite_literals_are_400(clf, raw, code):
    status, _, body = post(clf, raw_body=raw)
    assert status == 400
    assert body["error"]["code"] == code and body["error"]["field"] == "body"


def test_huge_number_overflowing_float_is_not_finite(clf, golden):
    raw = json.dumps({"instances": [golden["instances"][0]]}).replace(
        str(golden["instances"][0]["mean_area"]), "1" + "0" * 400, 1
    )
    status, _, body = post(clf, raw_body=raw)
    assert status == 400
    assert body["error"]["code"] in ("not_finite", "malformed_json")


def test_invalid_base64_is_400(clf):
    event = proxy_event("POST", "/predict", raw_body="%%%not-base64%%%")
    event["isBase64Encoded"] = True
    status, _, body = invoke(clf, event)
    assert status == 400 and body["error"]["code"] == "malformed_body"


def test_too_many_rows_is_413(serve, classifier_dir, golden):
    app = serve(classifier_dir, MODELOPS_MAX_ROWS="3")
    status, _, body = post(app, {"instances": golden["instances"][:4]})
    assert status == 413 and body["error"]["code"] == "too_many_rows" and body["error"]["field"] == "instances"
    status, _, body = post(
        app, {"columns": list(golden["instances"][0]), "data": [list(r.values()) for r in golden["instances"][:4]]}
    )
    assert status == 413 and body["error"]["field"] == "data"
    assert post(app, {"instances": golden["instances"][:3]})[0] == 200


def test_default_row_limit_is_1000(clf, golden):
    rows = golden["instances"][:1] * 1001
    assert post(clf, {"instances": rows})[0] == 413
    status, _, body = post(clf, {"instances": rows[:1000]})
    assert status == 200 and len(body["predictions"]) == 1000


def test_body_larger_than_the_limit_is_413(serve, classifier_dir, golden):
    app = serve(classifier_dir, MODELOPS_MAX_BODY_BYTES="2000")
    status, _, body = post(app, {"instances": golden["instances"][:5]})
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, _, body = post(app, {"instances": golden["instances"][:5]}, base64_body=True)
    assert status == 413


def test_deeply_nested_body_is_refused_quickly(clf):
    depth = 200_000
    raw = '{"instances": ' + "[" * depth + "]" * depth + "}"
    started = time.perf_counter()
    status, _, body = post(clf, raw_body=raw)
    assert status == 400 and body["error"]["code"] == "too_deep"
    nested_value = '{"instances": [{"mean_radius": ' + "[" * 500 + "]" * 500 + "}]}"
    status, _, body = post(clf, raw_body=nested_value)
    assert status == 400 and body["error"]["code"] in ("wrong_type", "missing_feature")
    assert time.perf_counter() - started < 60  # sanity bound only; speed is measured in bench/


def test_error_messages_do_not_echo_huge_names(clf, golden):
    long_name = "x" * 100_000
    status, _, body = post(clf, {"instances": [_row(golden, **{long_name: 1.0})]})
    assert status == 400 and len(body["error"]["field"]) < 300 and len(body["error"]["message"]) < 300


def test_cors_origin_header_when_configured(serve, classifier_dir, golden):
    app = serve(classifier_dir, MODELOPS_CORS_ORIGIN="https://example.org")
    _, headers, _ = post(app, {"instances": golden["instances"][:1]})
    assert headers["access-control-allow-origin"] == "https://example.org"
    _, headers, _ = invoke(app, proxy_event("GET", "/health"))
    assert headers["access-control-allow-origin"] == "https://example.org"


def test_no_cors_header_by_default(clf, golden):
    _, headers, _ = post(clf, {"instances": golden["instances"][:1]})
    assert "access-control-allow-origin" not in headers


def _json_lines(text):
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_emf_metrics_line_per_request_with_model_version_dimension(clf, golden, capsys):
    capsys.readouterr()
    post(clf, {"instances": golden["instances"][:3]})
    post(clf, {"instances": []})
    records = [r for r in _json_lines(capsys.readouterr().out) if "_aws" in r]
    assert len(records) == 2
    ok, bad = records
    directive = ok["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "modelops-test"
    assert ["ModelName", "ModelVersion", "Variant"] in directive["Dimensions"]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"Requests", "Rows", "Latency", "ClientErrors", "ServerErrors", "Score"} <= names
    assert all(m["Name"] in ok for m in directive["Metrics"])  # every declared metric has a value
    assert ok["ModelVersion"] == load_from_dir_version(clf)
    assert ok["Rows"] == 3 and ok["ClientErrors"] == 0 and ok["Latency"] > 0
    assert 0.0 <= ok["Score"] <= 1.0
    assert bad["ClientErrors"] == 1 and bad["Rows"] == 0 and "Score" not in bad


def load_from_dir_version(app):
    return app.gateway.holder.model.model_ref["version"]


def test_capture_is_off_by_default(clf, golden, capsys):
    capsys.readouterr()
    post(clf, {"instances": golden["instances"][:2]})
    assert not [r for r in _json_lines(capsys.readouterr().out) if "capture" in r]


def test_capture_line_holds_rows_and_predictions(serve, classifier_dir, golden, capsys):
    from modelops.capture.records import parse_records

    app = serve(classifier_dir, MODELOPS_CAPTURE="on")
    capsys.readouterr()
    _, _, answer = post(app, {"instances": golden["instances"][:2]}, request_id="cap-1")
    post(app, {"instances": []})  # refused requests are not captured
    out = capsys.readouterr().out
    captures = [r for r in _json_lines(out) if r.get("capture") is True]
    assert len(captures) == 1
    line = captures[0]
    assert line["request_id"] == "cap-1" and line["variant"] == "A"
    assert line["model_version"] == answer["model"]["version"]
    assert line["predictions"] == answer["predictions"]
    assert line["instances"] == golden["instances"][:2]
    parsed = list(parse_records(out.encode()))  # the reader of captured predictions understands the line
    assert len(parsed) == 1 and parsed[0].instances == golden["instances"][:2]
    assert parsed[0].request_id == "cap-1"
    assert parsed[0].scores == pytest.approx([p["malignant"] for p in answer["probabilities"]])


def test_capture_of_columnar_requests_lists_rows_as_objects(serve, classifier_dir, golden, capsys):
    app = serve(classifier_dir, MODELOPS_CAPTURE="on")
    rows = golden["instances"][:2]
    columns = list(rows[0])
    capsys.readouterr()
    post(app, {"columns": columns, "data": [[r[c] for c in columns] for r in rows]})
    captures = [r for r in _json_lines(capsys.readouterr().out) if r.get("capture") is True]
    assert captures[0]["instances"] == rows


def test_correlation_id_is_the_api_request_id(clf, monkeypatch):
    import io

    stream = io.StringIO()  # the Powertools handler keeps the stream it was created with
    monkeypatch.setattr(clf.gateway.log.registered_handler, "stream", stream)
    post(clf, {"instances": []}, request_id="corr-123")
    logs = [r for r in _json_lines(stream.getvalue()) if r.get("message") == "request refused"]
    assert logs and logs[0]["correlation_id"] == "corr-123"


def test_ready_made_events(clf):
    status, _, body = invoke(clf, load_event("predict-valid"))
    assert status == 200 and body["predictions"][0] in ("benign", "malignant")
    status, _, body = invoke(clf, load_event("predict-invalid"))
    assert status == 400 and body["error"]["field"] == "instances[0].mean_radius"
    status, _, body = invoke(clf, load_event("get-model"))
    assert status == 200 and body["name"] == "breast-cancer"


@pytest.mark.parametrize("model", ["classifier", "regressor"])
def test_values_that_overflow_inside_the_model_are_400(serve, classifier_dir, regressor_dir, model):
    model_dir = classifier_dir if model == "classifier" else regressor_dir
    app = serve(model_dir)
    golden = json.loads((model_dir / "golden.json").read_text())
    row = {name: 1e308 for name in golden["instances"][0]}
    status, _, body = post(app, {"instances": [golden["instances"][0], row]})
    if status == 200:  # the model saturated instead of overflowing: the answer must still be all numbers
        assert all(isinstance(p, (str, float, int)) for p in body["predictions"])
    else:  # either the model's own input check or the finiteness check of its output refuses the extreme row
        assert status == 400, body
        assert body["error"]["code"] in ("rejected_by_model", "out_of_range")
        assert body["error"]["field"].startswith("instances[1]")


def test_tracer_only_inside_aws():
    from modelops.serving.fastpath import running_in_aws

    aws = {"AWS_LAMBDA_FUNCTION_NAME": "predict", "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"}
    assert running_in_aws(aws)
    assert not running_in_aws({**aws, "AWS_SAM_LOCAL": "true"})
    assert not running_in_aws({**aws, "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not running_in_aws({"AWS_LAMBDA_FUNCTION_NAME": "predict"})  # local emulator: no X-Ray daemon
    assert not running_in_aws({})


def test_non_finite_model_output_is_never_answered(clf, golden, capsys):
    """A stand-in estimator (same predict_proba interface) returns NaN for rows with a huge first feature.
    On a row outside the training range that is the client's 400; on rows like the training data, the
    model is at fault: 500, counted in ServerErrors."""
    first = clf.gateway.holder.model.schema.names[0]

    class NanForHugeValues:
        def predict_proba(self, matrix):
            out = np.full((len(matrix), 2), 0.5)
            out[matrix[:, 0] > 1e6] = np.nan
            return out

    class NanForSecondRow:
        def predict_proba(self, matrix):
            out = np.full((len(matrix), 2), 0.5)
            out[1:] = np.nan
            return out

    clf.gateway.holder.model.estimator = NanForHugeValues()
    status, _, body = post(clf, {"instances": [golden["instances"][0], {**golden["instances"][1], first: 1e9}]})
    assert status == 400
    assert body["error"]["code"] == "out_of_range" and body["error"]["field"] == "instances[1]"
    clf.gateway.holder.model.estimator = NanForSecondRow()
    capsys.readouterr()
    status, _, body = post(clf, {"instances": golden["instances"][:2]})
    assert status == 500 and body["error"]["code"] == "model_error"
    metrics = [r for r in _json_lines(capsys.readouterr().out) if "_aws" in r]
    assert metrics[-1]["ServerErrors"] == 1 and metrics[-1]["ClientErrors"] == 0


def _capture_of(app, capsys, **post_kwargs):
    capsys.readouterr()
    status, _, _ = post(app, **post_kwargs)
    assert status == 200
    captures = [r for r in _json_lines(capsys.readouterr().out) if r.get("capture") is True]
    assert len(captures) == 1
    return captures[0]


def test_capture_writes_the_client_array_text_only_when_it_is_the_validated_array(
    serve, classifier_dir, golden, capsys
):
    import json

    from modelops.serving.capture import instances_text

    app = serve(classifier_dir, MODELOPS_CAPTURE="on")
    rows, other = golden["instances"][:2], golden["instances"][2:3]
    plain = json.dumps({"instances": rows})
    assert instances_text(plain, {"instances": rows}) == json.dumps(rows)
    pretty = json.dumps({"instances": rows}, indent=1)
    duplicate = '{"instances": ' + json.dumps(other) + ', "instances": ' + json.dumps(rows) + "}"
    escaped = '{"instances": ' + json.dumps(other) + ', "\\u0069nstances": ' + json.dumps(rows) + "}"
    for body in (plain, pretty, duplicate, escaped, json.dumps({"instances": rows, "user_id": "u-1"})):
        parsed = json.loads(body)
        text = instances_text(body, parsed)
        assert text is None or json.loads(text) == parsed["instances"]
        line = _capture_of(app, capsys, raw_body=body)
        assert line["instances"] == rows  # the rows that were validated and scored, never the text's first
    assert instances_text(duplicate, json.loads(duplicate)) is None
    assert instances_text(escaped, json.loads(escaped)) is None
    assert instances_text(pretty, json.loads(pretty)) is None  # a line break would split the capture line


def test_a_capture_with_the_client_text_reads_as_the_serialised_one(serve, classifier_dir, golden, capsys):
    from modelops.capture.records import parse_records

    app = serve(classifier_dir, MODELOPS_CAPTURE="on")
    rows = [golden["instances"][i % len(golden["instances"])] for i in range(100)]
    spliced = _capture_of(app, capsys, body={"instances": rows}, request_id="same")
    serialised = _capture_of(app, capsys, body={"instances": rows, "other": 1}, request_id="same")
    for record in (spliced, serialised):
        record.pop("at"), record.pop("latency_ms")
    assert spliced == serialised
    capsys.readouterr()
    post(app, {"instances": rows}, request_id="same")
    parsed = list(parse_records(capsys.readouterr().out.encode()))
    assert len(parsed) == 1 and parsed[0].instances == rows


def test_capture_of_a_three_class_boosting_model(serve, tmp_path, capsys):
    """HistGradientBoosting's multi-class predict_proba is a Fortran-ordered array, which orjson refuses to
    serialise; the capture line must still be written (for the client's array text and for serialised rows)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from support import user_models
    from support.frame_artifacts import write_frame_artifact

    _, X, y = user_models.multiclass_model()
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    assert not model.predict_proba(X.head(3)).flags.c_contiguous  # the shape that broke capture
    write_frame_artifact(tmp_path / "hgb3", model, X, y, "iris-hgb")
    app = serve(tmp_path / "hgb3", MODELOPS_CAPTURE="on")
    rows = json.loads((tmp_path / "hgb3" / "golden.json").read_text())["instances"][:3]
    columns = list(rows[0])
    for body in ({"instances": rows}, {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}):
        line = _capture_of(app, capsys, body=body)
        assert line["classes"] == ["setosa", "versicolor", "virginica"]
        np.testing.assert_allclose(line["probabilities"], model.predict_proba(X.head(3)), rtol=1e-12)
        assert line["instances"] == rows
