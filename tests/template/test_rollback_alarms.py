"""The canary's rollback alarms watch whichever version is being rolled out, a retrain's included.

A retrain rollout is an update of the stack (modelops.rollout.deploy), so CloudFormation sets the alarms' version dimension in
the same update that publishes the version: the alias's FunctionVersion and every alarm's ExecutedVersion /
FunctionVersion are the same `PredictFunction.Version.Version`. The alarms are then evaluated on the new version's
metrics: the predict function's own EMF lines (modelops.serving.metrics, as it prints them) and the per-version
metrics Lambda publishes for alias invocations (Errors and Duration with FunctionName, Resource and ExecutedVersion).

moto stores alarms and metrics but never evaluates an alarm, and its GetMetricData computes neither percentiles nor
metric math, so MetricStore below evaluates the alarm definitions itself: the statistic per period (pNN by nearest
rank), metric math with ABS and arithmetic, the last EvaluationPeriods periods with DatapointsToAlarm breaching, and
missing data not breaching (TreatMissingData notBreaching), as CloudWatch's alarm documentation describes.
"""

from __future__ import annotations

import io
import json
import math
import re

from cfnlint.decode import decode
from modelops.rollout.deploy import ROLLOUT_RESOURCES
from modelops.serving.metrics import RequestMetrics
from support.paths import ROOT
from support.template import conditions_of, decide

from devtools.template import LocalContext, Template

TEMPLATE = ROOT / "template.yaml"
FUNCTION = "modelops-dev-PredictFunction-AbC"
NAMESPACE = "modelops"  # Globals.Function POWERTOOLS_METRICS_NAMESPACE, checked below
ALARMS = (
    "PredictNewVersionErrorsAlarm",
    "PredictNewVersionServerErrorsAlarm",
    "PredictNewVersionLatencyAlarm",
    "PredictNewVersionScoreShiftAlarm",
)


class MetricStore:
    """Datapoints by (namespace, name, dimensions), all in the alarm's current period; evaluates alarm definitions."""

    def __init__(self):
        self.points: dict[tuple[str, str, frozenset], list[float]] = {}

    def put(self, namespace: str, name: str, dimensions: dict[str, str], *values: float) -> None:
        self.points.setdefault((namespace, name, frozenset(dimensions.items())), []).extend(values)

    def put_emf(self, line: str) -> None:
        """One EMF line, published for each of its dimension sets (CloudWatch's embedded metric format)."""
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = {d: doc[d] for d in dimension_set}
                for metric in directive["Metrics"]:
                    if metric["Name"] in doc:
                        self.put(directive["Namespace"], metric["Name"], dims, float(doc[metric["Name"]]))

    def statistic(self, namespace: str, name: str, dimensions: list[dict], stat: str) -> float | None:
        values = self.points.get((namespace, name, frozenset((d["Name"], d["Value"]) for d in dimensions)))
        if not values:
            return None
        if stat == "Sum":
            return sum(values)
        if stat == "SampleCount":
            return float(len(values))
        if stat == "Average":
            return sum(values) / len(values)
        if stat == "Maximum":
            return max(values)
        if re.fullmatch(r"p\d+(\.\d+)?", stat):
            ranked = sorted(values)
            return ranked[max(0, math.ceil(float(stat[1:]) / 100 * len(ranked)) - 1)]
        raise AssertionError(f"statistic {stat} is not modelled")

    def value(self, alarm: dict) -> float | None:
        if "Metrics" not in alarm:
            stat = alarm.get("Statistic") or alarm["ExtendedStatistic"]
            return self.statistic(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions", []), stat)
        results: dict[str, float | None] = {}
        for query in alarm["Metrics"]:
            if "MetricStat" in query:
                m = query["MetricStat"]["Metric"]
                results[query["Id"]] = self.statistic(
                    m["Namespace"], m["MetricName"], m.get("Dimensions", []), query["MetricStat"]["Stat"]
                )
        (expression,) = [q["Expression"] for q in alarm["Metrics"] if q.get("ReturnData")]
        if any(v is None for v in results.values()):
            return None
        try:
            return float(eval(expression, {"__builtins__": {}, "ABS": abs}, dict(results)))  # noqa: S307 - test-only
        except ZeroDivisionError:
            return None

    def state(self, alarm: dict) -> str:
        value = self.value(alarm)
        if value is None:
            assert alarm["TreatMissingData"] == "notBreaching"
            return "OK"
        threshold = float(alarm["Threshold"])
        breaching = {
            "GreaterThanThreshold": value > threshold,
            "GreaterThanOrEqualToThreshold": value >= threshold,
            "LessThanThreshold": value < threshold,
        }[alarm["ComparisonOperator"]]
        # The test's datapoints stand for each of the alarm's EvaluationPeriods (a canary lasts longer than all of
        # them), so DatapointsToAlarm of them breach exactly when one does.
        return "ALARM" if breaching else "OK"


def version_resource(translated: dict) -> str:
    (lid,) = [
        k for k, r in translated.items() if r["Type"] == "AWS::Lambda::Version" and k.startswith("PredictFunction")
    ]
    return lid


def alarms_as_deployed(translated: dict, version: str) -> dict[str, dict]:
    """The rollback alarms as CloudFormation sets them in the update that publishes `version`."""
    lid = version_resource(translated)
    raw = json.dumps({name: translated[name]["Properties"] for name in ALARMS})
    raw = raw.replace(json.dumps({"Fn::GetAtt": [lid, "Version"]}), json.dumps(version))
    t = Template(TEMPLATE, LocalContext(stack_name="modelops-dev", resources={"PredictFunction": FUNCTION}))
    t.doc = {**t.doc, "Resources": translated}
    t.resources = translated
    return {name: t.resolve(props) for name, props in json.loads(raw).items()}


def test_alarms_watch_the_version_the_alias_moves_to(translated):
    data, _ = decode(str(TEMPLATE))
    assert data["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    lid = version_resource(translated)
    alias = translated["PredictFunctionAliaslive"]["Properties"]
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [lid, "Version"]}
    for name in ALARMS:
        assert json.dumps({"Fn::GetAtt": [lid, "Version"]}) in json.dumps(translated[name]["Properties"]), name
    group = decide(
        translated["PredictFunctionDeploymentGroup"]["Properties"],
        conditions_of(json.loads(json.dumps(data, default=str))),
    )
    group = group["AlarmConfiguration"]["Alarms"]
    assert [a["Name"] for a in group] == [{"Ref": name} for name in ALARMS]
    # a rollout's change set may update them: they are among the resources that follow the model version
    from fnmatch import fnmatchcase

    assert all(any(fnmatchcase(name, p) for p in ROLLOUT_RESOURCES) for name in ALARMS)


def metrics_of_a_bad_canary(monkeypatch) -> MetricStore:
    """Version 1 serves well; version 2, the retrain's canary, fails requests, is slow and scores differently."""
    store = MetricStore()
    for version, score, status, latency in (("1", 0.20, 200, 40.0), ("2", 0.95, 500, 1500.0)):
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", version)
        out = io.StringIO()
        metrics = RequestMetrics("breast-cancer", f"model-of-{version}", namespace=NAMESPACE, stream=out)
        for _ in range(5):
            metrics.emit(200, latency, 1, score)
        metrics.emit(status, latency, 1, None)
        for line in out.getvalue().splitlines():
            store.put_emf(line)
        lambda_dims = {"FunctionName": FUNCTION, "Resource": f"{FUNCTION}:live", "ExecutedVersion": version}
        errors = [1.0, 1.0] if version == "2" else [0.0]
        store.put("AWS/Lambda", "Errors", lambda_dims, *errors)
        store.put("AWS/Lambda", "Duration", lambda_dims, *([latency] * 6))
    return store


def test_a_bad_retrain_canary_fires_every_rollback_alarm(translated, monkeypatch):
    store = metrics_of_a_bad_canary(monkeypatch)
    canary = alarms_as_deployed(translated, "2")
    assert {name: store.state(alarm) for name, alarm in canary.items()} == dict.fromkeys(ALARMS, "ALARM")
    # Alarms left on the version first published would watch a version without this traffic's errors and latency;
    # only the score shift, a difference between that version and the rest, would still see it.
    stale = {name: store.state(alarm) for name, alarm in alarms_as_deployed(translated, "1").items()}
    assert stale == {**dict.fromkeys(ALARMS, "OK"), "PredictNewVersionScoreShiftAlarm": "ALARM"}


def test_a_good_canary_fires_none(translated, monkeypatch):
    store = MetricStore()
    for version in ("1", "2"):
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", version)
        out = io.StringIO()
        metrics = RequestMetrics("breast-cancer", f"model-of-{version}", namespace=NAMESPACE, stream=out)
        for _ in range(6):
            metrics.emit(200, 30.0, 1, 0.30 if version == "1" else 0.34)
        for line in out.getvalue().splitlines():
            store.put_emf(line)
        dims = {"FunctionName": FUNCTION, "Resource": f"{FUNCTION}:live", "ExecutedVersion": version}
        store.put("AWS/Lambda", "Duration", dims, *([30.0] * 6))
    states = {name: store.state(alarm) for name, alarm in alarms_as_deployed(translated, "2").items()}
    assert states == dict.fromkeys(ALARMS, "OK")
