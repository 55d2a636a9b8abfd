"""Quality over a sliding window, metric publishing (EMF lines and PutMetricData on moto CloudWatch), and
how the retrain function classifies incoming events."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from modelops.capture.labelled import LabelledRow
from modelops.core.errors import ModelOpsError
from modelops.monitoring import quality as monitoring
from modelops.retrain.events import classify
from modelops.wiring import retrain as lifecycle


def row(at, version, prediction, actual, score=None):
    return LabelledRow(
        request_id=f"r{at}",
        row=0,
        at=at,
        variant="A",
        model_version=version,
        prediction=prediction,
        score=score,
        actual=actual,
        feedback_at=at + 1,
    )


def test_sliding_window_keeps_only_records_inside_it():
    records = [row(t, "v1", "a", "a") for t in (100, 3600, 3601, 7200, 7201)]
    kept = monitoring.window(records, now=7200, seconds=3600)
    assert [r.at for r in kept] == [3601, 7200]  # (now - window, now]


def test_classification_quality_by_hand():
    classes = ["benign", "malignant"]
    records = [
        row(1, "v1", "benign", "benign", 0.1),
        row(2, "v1", "malignant", "benign", 0.6),
        row(3, "v1", "malignant", "malignant", 0.9),
        row(4, "v1", "benign", "malignant", 0.4),
    ]
    q = monitoring.quality("classification", classes, records)
    assert q["rows"] == 4 and q["accuracy"] == 0.5
    # positives scored 0.9, 0.4; negatives 0.1, 0.6: pairs won 3 of 4
    assert q["roc_auc"] == pytest.approx(0.75)


def test_regression_quality_by_hand():
    records = [row(1, "v1", 10.0, 12.0), row(2, "v1", 5.0, 1.0)]
    q = monitoring.quality("regression", None, records)
    assert q["mae"] == pytest.approx(3.0)
    assert q["rmse"] == pytest.approx(math.sqrt((4 + 16) / 2))


def test_quality_is_per_model_version():
    records = [row(1, "v1", "a", "a"), row(2, "v1", "a", "b"), row(3, "v2", "b", "b")]
    by_version = monitoring.quality_by_version("classification", ["a", "b"], records)
    assert by_version["v1"]["accuracy"] == 0.5 and by_version["v2"]["accuracy"] == 1.0


def test_emf_line_shape_and_dimension_sets():
    lines: list[str] = []
    sink = monitoring.EmfSink(lines.append, ns="modelops")
    count = monitoring.publish_quality(sink, "m", "v1", {"rows": 10, "accuracy": 0.8, "roc_auc": 0.9}, serving=True)
    assert count == 3
    docs = [json.loads(line) for line in lines]
    accuracy = next(d for d in docs if "QualityAccuracy" in d)
    directive = accuracy["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "modelops"
    assert directive["Dimensions"] == [["ModelName", "ModelVersion"], ["ModelName"]]
    assert accuracy["ModelName"] == "m" and accuracy["ModelVersion"] == "v1" and accuracy["QualityAccuracy"] == 0.8
    lines.clear()
    monitoring.publish_quality(sink, "m", "v2", {"rows": 3, "accuracy": 1.0}, serving=False)
    assert json.loads(lines[0])["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ModelName", "ModelVersion"]]


def test_cloudwatch_sink_publishes_what_alarms_read(moto_aws):
    cw = boto3.client("cloudwatch")
    sink = monitoring.CloudWatchSink(cw, ns="modelops")
    monitoring.publish_drift(
        sink, "m", "v1", {"rows": 5, "psi": {"x": 0.4, "y": 0.1}, "psi_max": 0.4, "prediction_psi": 0.2}, serving=True
    )
    now = datetime.now(UTC)
    got = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "modelops",
                        "MetricName": "DriftPSIMax",
                        "Dimensions": [{"Name": "ModelName", "Value": "m"}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
    )
    assert got["MetricDataResults"][0]["Values"] == [0.4]
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="modelops")["Metrics"]}
    assert names == {"FeaturePSI", "DriftPSIMax", "PredictionPSI"}


def test_classify_alarm_schedule_stack_update_and_manual_events():
    alarm = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "time": "t",
        "detail": {"alarmName": "q", "state": {"value": "ALARM", "reason": "r"}, "previousState": {"value": "OK"}},
    }
    assert classify(alarm) == (
        "retrain",
        {"type": "alarm", "alarm": "q", "state": "ALARM", "reason": "r", "time": "t", "previous": "OK"},
    )
    alarm["detail"]["state"]["value"] = "INSUFFICIENT_DATA"
    assert classify(alarm)[0] == "ignore"
    schedule = {"source": "aws.events", "detail-type": "Scheduled Event", "resources": ["arn:rule/weekly"], "time": "t"}
    assert classify(schedule) == ("retrain", {"type": "schedule", "rule": "arn:rule/weekly", "time": "t"})
    # CloudFormation's "Stack Status Change" event (CloudFormation user guide, events detail reference)
    update = {
        "source": "aws.cloudformation",
        "detail-type": "CloudFormation Stack Status Change",
        "time": "t",
        "detail": {
            "stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "status-details": {"status": "UPDATE_ROLLBACK_COMPLETE", "status-reason": "alarm"},
            "client-request-token": "modelops-rollout-v2",
        },
    }
    action, info = classify(update)
    assert action == "finalize" and info["succeeded"] is False and info["deployment_id"] == "modelops-rollout-v2"
    update["detail"]["status-details"]["status"] = "UPDATE_COMPLETE"
    assert classify(update)[1]["succeeded"] is True
    update["detail"]["status-details"]["status"] = "UPDATE_IN_PROGRESS"
    assert classify(update)[0] == "ignore"
    codedeploy = {"source": "aws.codedeploy", "detail-type": "CodeDeploy Deployment State-change Notification"}
    assert classify(codedeploy)[0] == "ignore"  # the stack update's end is what counts
    assert classify({"action": "retrain", "dry_run": True})[1]["dry_run"] is True
    assert classify({"hello": 1})[0] == "ignore"


def test_config_from_env_reads_floors_and_refuses_non_numbers():
    config = lifecycle.config_from_env(
        {
            "MODELOPS_RETRAIN_MARGIN": "0.02",
            "MODELOPS_RETRAIN_MIN_ACCURACY": "0.9",
            "MODELOPS_RETRAIN_MAX_MAE": "",
            "MODELOPS_RETRAIN_COOLDOWN_HOURS": "2",
        }
    )
    assert config.margin == 0.02 and config.floors == {"accuracy": 0.9} and config.cooldown_seconds == 7200
    with pytest.raises(ModelOpsError, match="MODELOPS_RETRAIN_MARGIN='lots' is not a number"):
        lifecycle.config_from_env({"MODELOPS_RETRAIN_MARGIN": "lots"})


def test_sns_announcement_reaches_subscribers(moto_aws):
    """moto SNS with an SQS subscriber stands in for the topic's e-mail or chat subscribers."""
    from modelops.adapters.notify import SnsNotifier

    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="lifecycle")["TopicArn"]
    queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    SnsNotifier(sns, topic).publish("modelops: m candidate not promoted", {"outcome": "rejected", "reason": "worse"})
    body = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert body["Subject"] == "modelops: m candidate not promoted"
    assert json.loads(body["Message"]) == {"outcome": "rejected", "reason": "worse"}


def test_firehose_objects_from_the_log_subscription_are_read(s3):
    """What the capture pipeline writes: CloudWatch Logs subscription envelopes, each gzip-compressed, concatenated
    by Firehose into one object (CompressionFormat UNCOMPRESSED keeps the logs' own gzip)."""
    import gzip
    import time

    from modelops.capture.records import PredictionLog, prediction_record

    now = time.time()
    envelopes = []
    for batch in range(2):
        lines = [
            json.dumps(
                prediction_record(
                    request_id=f"r{batch}-{i}",
                    model_version="v1",
                    at=now - 60,
                    instances=[{"x": float(i)}],
                    predictions=["a"],
                    scores=[0.2],
                )
            )
            for i in range(3)
        ]
        envelope = {
            "messageType": "DATA_MESSAGE",
            "logGroup": "/aws/lambda/predict",
            "subscriptionFilters": ["f"],
            "logEvents": [
                {"id": str(i), "timestamp": int(now * 1000), "message": line + "\n"} for i, line in enumerate(lines)
            ],
        }
        envelopes.append(gzip.compress(json.dumps(envelope).encode()))
    day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
    s3.put_object(Bucket="modelops-test", Key=f"data/captures/date={day}/stream-1-2026", Body=b"".join(envelopes))
    records = PredictionLog("modelops-test", "data", s3).read(since=now - 3600)
    assert sorted(r.request_id for r in records) == sorted(f"r{b}-{i}" for b in range(2) for i in range(3))
    assert sorted(r.instances[0]["x"] for r in records) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    assert all(r.scores == [0.2] and r.model_version == "v1" for r in records)
