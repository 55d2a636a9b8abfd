"""The scheduled handler, the Step Functions steps, the state machine definition, the template and the CLI.

moto's Step Functions interpreter cannot invoke Lambda functions without Docker, so the Distributed Map is
exercised step by step: the test reads the ASL, resolves its ItemReader and ItemSelector paths against the
real outputs of the Prepare step, and calls the worker handler exactly as each state would.
"""

from __future__ import annotations

import json

import pytest
from modelops.core.errors import ModelOpsError
from support.batch import (
    BUCKET,
    DATE,
    csv_bytes,
    features_and_rows,
    keys,
    manifest,
    put_input,
    read_csv,
    register_champion,
)
from support.context import LambdaContext
from support.handlers import load_handler
from support.paths import ROOT
from support.template import flatten

from modelops_cli import main as cli_main

ASL = json.loads((ROOT / "statemachine" / "batch.asl.json").read_text())
OUT = f"batch/output/{DATE}/"
CONTEXT = LambdaContext(function_name="batch", memory_limit_in_mb=3008)


@pytest.fixture
def env(monkeypatch, registry, classifier_dir):
    register_champion(registry, classifier_dir)
    for k, v in {
        "MODELOPS_DATA_BUCKET": BUCKET,
        "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
        "MODELOPS_MODEL_NAME": "breast-cancer",
        "MODELOPS_BATCH_UPSTREAM_MARKER": "{date}/_SUCCESS",
        "MODELOPS_BATCH_TIMEZONE": "Asia/Shanghai",
        "MODELOPS_BATCH_CHUNK_ROWS": "100",
    }.items():
        monkeypatch.setenv(k, v)
    return monkeypatch


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_scheduled_event_scores_yesterday_in_the_schedule_time_zone(s3, env, capsys):
    names, X = features_and_rows(250)
    put_input(s3, "a.csv", csv_bytes(names, X))
    put_input(s3, "_SUCCESS", b"")
    event = json.loads((ROOT / "events" / "batch-schedule.json").read_text())  # 02:00 Shanghai, 15 March
    result = load_handler("batch").lambda_handler(event, CONTEXT)

    assert result["status"] == "succeeded" and result["run_date"] == DATE
    assert result["rows"] == {"read": 250, "scored": 250, "rejected": 0}
    docs = _emf(capsys.readouterr().out)
    psi = {d["Feature"]: d["FeaturePSI"] for d in docs if "FeaturePSI" in d}
    assert set(psi) == set(names) and psi == manifest(s3)["drift"]["feature_psi"]
    assert any("PredictionPSI" in d for d in docs)
    counts = next(d for d in docs if "BatchRowsScored" in d)
    assert counts["BatchRowsScored"] == 250
    assert counts["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ModelName"], ["ModelName", "ModelVersion"]]
    feature_doc = next(d for d in docs if "FeaturePSI" in d)
    assert feature_doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["ModelName", "Feature"],
        ["ModelName", "ModelVersion", "Feature"],
    ]
    assert feature_doc["ModelVersion"] == manifest(s3)["model"]["version"]


def test_waiting_is_bounded_then_fails_with_metric_and_log(s3, env, capsys, caplog):
    names, X = features_and_rows(10)
    put_input(s3, "a.csv", csv_bytes(names, X))  # data present, upstream marker missing
    handler = load_handler("batch").lambda_handler
    first = handler({"run_date": DATE, "max_attempts": 2, "wait_seconds": 60}, CONTEXT)
    assert first["status"] == "waiting" and first["attempt"] == 2 and first["wait_seconds"] == 60
    assert "upstream marker" in first["waiting_for"][0]
    # the state machine feeds the answer back in after its Wait state
    last = handler(first, CONTEXT)
    assert last["status"] == "timed_out" and "not ready after 2 attempts" in last["error"]
    out = capsys.readouterr().out
    assert [d["BatchDependencyTimeout"] for d in _emf(out)] == [1]
    assert any(
        r.levelname == "ERROR" and "dependencies not ready after 2 attempts" in r.getMessage() for r in caplog.records
    )
    assert keys(s3, "batch/output/") == []


def _path(doc: dict, path: str):
    assert path.startswith("$.")
    for part in path[2:].split("."):
        doc = doc[part]
    return doc


def _payload(params: dict, state: dict, item=None) -> dict:
    out = {}
    for k, v in params.items():
        if k.endswith(".$"):
            out[k[:-2]] = item if v == "$$.Map.Item.Value" else (state if v == "$" else _path(state, v))
        elif isinstance(v, dict):
            out[k] = _payload(v, state, item)
        else:
            out[k] = v
    return out


def test_distributed_map_steps_score_parts_and_commit_last(s3, env, capsys):
    env.setenv("MODELOPS_BATCH_INLINE_MAX_BYTES", "1")  # force the fan-out
    env.setenv("MODELOPS_BATCH_PART_BYTES", str(32 * 1024))
    env.setenv("MODELOPS_BATCH_MAX_CONCURRENCY", "40")
    names, X = features_and_rows(600, seed=7)
    put_input(s3, "a.csv", csv_bytes(names, X))
    put_input(s3, "b.csv", csv_bytes(names, X[:40], ids=[f"b{i}" for i in range(40)]))
    put_input(s3, "_SUCCESS", b"")
    batch, worker = load_handler("batch").lambda_handler, load_handler("batch_worker").lambda_handler

    prepared = batch(_payload(ASL["States"]["Prepare"]["Parameters"], {"run_date": DATE})["Payload"], CONTEXT)
    assert prepared["status"] == "fanout"
    assert next(c["Next"] for c in ASL["States"]["Route"]["Choices"] if c["StringEquals"] == "fanout") == "ScoreParts"
    assert prepared["max_concurrency"] == 40  # MaxConcurrencyPath: the template's BatchMaxConcurrency, via the env
    mapping = ASL["States"]["ScoreParts"]
    reader = _payload(mapping["ItemReader"]["Parameters"], prepared)
    items = json.loads(s3.get_object(Bucket=reader["Bucket"], Key=reader["Key"])["Body"].read())
    assert len(items) > 2 and reader["Bucket"] == BUCKET

    task = mapping["ItemProcessor"]["States"]["ScorePart"]
    for item in reversed(items):  # children finish in any order
        event = _payload(mapping["ItemSelector"], prepared, item)
        worker(_payload(task["Parameters"], event)["Payload"], CONTEXT)
    worker(_payload(task["Parameters"], _payload(mapping["ItemSelector"], prepared, items[0]))["Payload"], CONTEXT)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "_manifest.json")  # not yet committed

    commit = _payload(ASL["States"][mapping["Next"]]["Parameters"], prepared)["Payload"]
    result = worker(commit, CONTEXT)
    assert result["status"] == "succeeded" and result["rows"] == {"read": 640, "scored": 640, "rejected": 0}
    m = manifest(s3)
    ids = [r["id"] for key in m["outputs"]["predictions"] for r in read_csv(s3, key)]
    assert ids == [f"r{i}" for i in range(600)] + [f"b{i}" for i in range(40)]  # a retried part adds nothing
    assert any("FeaturePSI" in d for d in _emf(capsys.readouterr().out))


def test_commit_refuses_while_a_part_is_missing(s3, env):
    env.setenv("MODELOPS_BATCH_INLINE_MAX_BYTES", "1")
    names, X = features_and_rows(50)
    put_input(s3, "a.csv", csv_bytes(names, X))
    put_input(s3, "b.csv", csv_bytes(names, X))
    put_input(s3, "_SUCCESS", b"")
    batch, worker = load_handler("batch").lambda_handler, load_handler("batch_worker").lambda_handler
    prepared = batch({"run_date": DATE}, CONTEXT)
    items = json.loads(s3.get_object(Bucket=BUCKET, Key=prepared["run"]["parts_key"])["Body"].read())
    worker({"step": "score_part", "run": prepared["run"], "part": items[0]}, CONTEXT)
    with pytest.raises(ModelOpsError, match="part 1 has not finished"):
        worker({"step": "commit", "run": prepared["run"]}, CONTEXT)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=OUT + "_manifest.json")
    with pytest.raises(ModelOpsError, match="expected"):
        worker({"step": "dance"}, CONTEXT)


def _next_states(state: dict) -> list[str]:
    out = [state["Next"]] if "Next" in state else []
    out += [c["Next"] for c in state.get("Choices", [])]
    out += [c["Next"] for c in state.get("Catch", [])]
    return out + ([state["Default"]] if "Default" in state else [])


def test_state_machine_definition_is_valid_asl():
    states = ASL["States"]
    assert ASL["StartAt"] in states
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        assert state["Type"] in {"Task", "Choice", "Wait", "Map", "Succeed", "Fail", "Pass"}
        nexts = _next_states(state)
        assert all(n in states for n in nexts), name
        assert nexts or state.get("End") or state["Type"] in ("Succeed", "Fail"), f"{name} is a dead end"
        todo += nexts
    assert seen == set(states), f"unreachable: {set(states) - seen}"
    # every status the scheduled step can answer is routed
    routed = {c["StringEquals"] for c in states["Route"]["Choices"]}
    assert routed == {"succeeded", "skipped", "waiting", "fanout", "timed_out"}
    assert states["WaitForDependencies"] == {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Prepare"}
    assert states["DependenciesTimedOut"]["Type"] == "Fail"
    mapping = states["ScoreParts"]
    assert mapping["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    # MaxConcurrencyPath must resolve to a number: the batch function answers it (MODELOPS_BATCH_MAX_CONCURRENCY,
    # the template's BatchMaxConcurrency) next to the run, where a DefinitionSubstitution could only give text.
    assert mapping["MaxConcurrencyPath"] == "$.max_concurrency" and "MaxConcurrency" not in mapping
    assert mapping["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert mapping["Next"] == "Commit" and states["Commit"]["Next"] == "Done"
    for name in ("ScoreParts", "Commit"):  # a failure gives the date's lease back before the execution fails
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ReleaseLease"}
        ]
    assert states["ReleaseLease"]["Parameters"]["Payload"]["step"] == "release"
    assert states["ReleaseLease"]["Next"] == "RunFailed" and states["RunFailed"]["Type"] == "Fail"
    inner = mapping["ItemProcessor"]
    assert inner["StartAt"] in inner["States"] and inner["States"]["ScorePart"]["End"] is True


def _template() -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse((ROOT / "template.yaml").read_text())


def test_template_wires_schedule_state_machine_and_functions():
    t = _template()
    params, res = t["Parameters"], t["Resources"]
    assert params["BatchScheduleExpression"]["Default"] == "cron(0 2 * * ? *)"
    assert params["BatchScheduleTimezone"]["Default"] == "Asia/Shanghai"
    assert set(params["BatchScheduleState"]["AllowedValues"]) == {"ENABLED", "DISABLED"}
    machine = res["BatchStateMachine"]["Properties"]
    assert machine["DefinitionUri"] == "statemachine/batch.asl.json"
    text = (ROOT / "statemachine" / "batch.asl.json").read_text()
    for placeholder in machine["DefinitionSubstitutions"]:
        assert "${" + placeholder + "}" in text
    batch_env = res["BatchFunction"]["Properties"]["Environment"]["Variables"]
    assert batch_env["MODELOPS_BATCH_MAX_CONCURRENCY"] == {"Ref": "BatchMaxConcurrency"}
    assert params["BatchMaxConcurrency"]["Type"] == "Number" and params["BatchMaxConcurrency"]["MinValue"] == 1
    schedule = machine["Events"]["DailySchedule"]
    assert schedule["Type"] == "ScheduleV2"
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {"Ref": "BatchScheduleExpression"}
    assert props["ScheduleExpressionTimezone"] == {"Ref": "BatchScheduleTimezone"}
    assert props["State"] == {"Ref": "BatchScheduleState"}
    assert json.loads(props["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    for name, path in (("BatchFunction", "functions/batch/"), ("BatchWorkerFunction", "functions/batch_worker/")):
        fn = res[name]["Properties"]
        assert fn["CodeUri"] == path and fn["Timeout"] == 900
        statements = list(flatten(fn["Policies"][0]["Statement"]))
        assert all(s["Resource"] != "*" for s in statements)  # scoped to the batch and registry prefixes
        assert {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == {
            "s3:ListBucket",
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListBucketMultipartUploads",
            "kms:Verify",  # ModelSigning=kms: the model's signature
            "kms:Decrypt",  # KmsKeyArn: the bucket's customer key
            "kms:GenerateDataKey",
        }


def test_cli_score_workers_flag(s3, env, capsys):
    names, X = features_and_rows(300)
    put_input(s3, "a.csv", csv_bytes(names, X))
    args = ["batch", "run", "--date", DATE, "--upstream-marker", ""]
    assert cli_main([*args, "--score-workers", "-2"]) == 1
    assert "--score-workers must be 0 (one per CPU) or more, got -2" in capsys.readouterr().err
    assert cli_main(["--json", *args, "--score-workers", "3", "--chunk-rows", "50"]) == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["rows"]["scored"] == 300


def test_cli_batch_run_and_status(s3, env, capsys):
    names, X = features_and_rows(30)
    put_input(s3, "a.csv", csv_bytes(names, X))
    assert cli_main(["batch", "status", "--date", DATE]) == 1
    out = capsys.readouterr().out
    assert "no manifest" in out and "upstream marker" in out
    assert cli_main(["batch", "run", "--date", DATE]) == 75
    assert "waiting for upstream marker" in capsys.readouterr().err
    put_input(s3, "_SUCCESS", b"")
    assert cli_main(["batch", "run", "--date", DATE]) == 0
    assert "rows scored" in capsys.readouterr().out
    assert cli_main(["batch", "run", "--date", DATE]) == 0
    assert "skipped" in capsys.readouterr().out
    assert cli_main(["--json", "batch", "run", "--date", DATE, "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["forced"] is True
    assert cli_main(["--json", "batch", "status", "--date", DATE]) == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["rows"]["scored"] == 30
    assert cli_main(["batch", "run", "--date", "2026-02-30"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--date: '2026-02-30' is not a date" in err


def test_cli_batch_status_draws_drift_per_feature(s3, env, capsys, tmp_path):
    names, X = features_and_rows(40)
    put_input(s3, "a.csv", csv_bytes(names, X))
    put_input(s3, "_SUCCESS", b"")
    assert cli_main(["batch", "run", "--date", DATE]) == 0
    capsys.readouterr()
    chart = tmp_path / "drift.png"
    assert cli_main(["--json", "batch", "status", "--date", DATE, "--drift-chart", str(chart)]) == 0
    manifest = json.loads(capsys.readouterr().out)["manifest"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from modelops_cli.drift_chart import draw_drift

    bars = draw_drift(manifest, tmp_path / "again.png")
    psi_by_feature = manifest["drift"]["feature_psi"]
    drawn = dict(bars)
    assert drawn.pop("(prediction)") == manifest["drift"]["prediction_psi"]
    assert drawn == dict(sorted(psi_by_feature.items(), key=lambda kv: kv[1], reverse=True)[:30])


def test_cli_backfill_runs_dates_in_order_and_stops_at_the_first_not_ready(s3, env, capsys):
    names, X = features_and_rows(20)
    for day, ready in (("2026-03-01", True), ("2026-03-02", True), ("2026-03-03", False), ("2026-03-04", True)):
        put_input(s3, "a.csv", csv_bytes(names, X), date=day)
        if ready:
            put_input(s3, "_SUCCESS", b"", date=day)
    code = cli_main(["--json", "batch", "backfill", "--from", "2026-03-01", "--to", "2026-03-04"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 75
    assert [(r["date"], r["status"]) for r in rows] == [
        ("2026-03-01", "succeeded"),
        ("2026-03-02", "succeeded"),
        ("2026-03-03", "waiting"),
    ]
    assert rows[0]["scored"] == 20 and "upstream marker" in rows[2]["detail"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="modelops-test", Prefix="batch/output/")["Contents"]]
    assert not any("2026-03-04" in k for k in keys)  # nothing after the date that was not ready
    put_input(s3, "_SUCCESS", b"", date="2026-03-03")
    assert cli_main(["--json", "batch", "backfill", "--from", "2026-03-01", "--to", "2026-03-04"]) == 0
    statuses = [r["status"] for r in json.loads(capsys.readouterr().out)]
    assert statuses == ["skipped", "skipped", "succeeded", "succeeded"]
    assert cli_main(["batch", "backfill", "--from", "2026-03-01", "--to", "2026-03-02"]) == 0
    assert "2 of 2 dates run" in capsys.readouterr().out
    assert cli_main(["batch", "backfill", "--from", "2026-03-04", "--to", "2026-03-01"]) == 1
    assert "is after --to" in capsys.readouterr().err


def test_row_progress_counts_chunks_and_rows():
    import numpy as np
    from modelops.batch.readers import Chunk

    from modelops_cli.output import RowProgress

    counter = RowProgress("run 2026-03-01")
    counter.update(Chunk(ids=np.full((3, 1), ord("1"), np.uint8), matrix=np.zeros((3, 2)), rejected=[(4, "bad")]))
    counter.update(Chunk(ids=np.full((2, 1), ord("2"), np.uint8), matrix=np.zeros((2, 2))))
    assert (counter.rows, counter.rejected, counter.chunks) == (5, 1, 2)
    assert counter.line().startswith("run 2026-03-01: 5 rows scored, 1 rejected, 2 chunks")
