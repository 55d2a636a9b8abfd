"""Captured traffic for the shadow tests: the predict gateway serves the champion with capture on, and its capture
lines are delivered to the data prefix as Firehose writes them (JSON lines)."""

from __future__ import annotations

import json
import time

import numpy as np
from modelops.wiring.predict import build as build_gateway

from support import shadow_models
from support.aws import BUCKET

MODEL = "shadow-demo"
DATA = f"s3://{BUCKET}/data"
REGISTRY = f"s3://{BUCKET}/registry"


def predict_event(body: dict, request_id: str) -> dict:
    return {
        "httpMethod": "POST",
        "path": "/predict",
        "resource": "/predict",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"requestId": request_id},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def serve_and_capture(registry, s3, tmp_path, capsys, champion_version, requests=40, rows=5):
    """Serve `requests` requests through the predict gateway with capture on; deliver the capture lines to S3.
    Returns the rows sent and the champion's answers, in order."""
    directory = tmp_path / "champion"
    registry.download(MODEL, champion_version, directory)
    g = build_gateway(
        {
            "MODELOPS_MODEL_DIR": str(directory),
            "MODELOPS_MODEL_NAME": MODEL,
            "MODELOPS_MODEL_VERSION": champion_version,
            "MODELOPS_CAPTURE": "on",
        }
    )
    rng = np.random.default_rng(7)
    sent, answers = [], []
    capsys.readouterr()
    for i in range(requests):
        matrix = rng.random((rows, 4)).round(6)
        if i % 2:  # columnar requests are captured too
            body = {"columns": shadow_models.FEATURES, "data": matrix.tolist()}
        else:
            body = {"instances": [dict(zip(shadow_models.FEATURES, r, strict=True)) for r in matrix.tolist()]}
        out = g.handle(predict_event(body, f"req-{i}"))
        assert out["statusCode"] == 200, out
        sent.extend(matrix.tolist())
        answers.extend(json.loads(out["body"])["predictions"])
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) >= requests
    day = time.strftime("%Y-%m-%d", time.gmtime())
    s3.put_object(Bucket=BUCKET, Key=f"data/captures/date={day}/delivery-1.jsonl", Body="\n".join(lines) + "\n")
    return np.array(sent), answers
