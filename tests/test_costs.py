"""docs/costs.md: the per-1M-prediction arithmetic, the inputs read from template.yaml and bench results, and
the committed page agreeing with both."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devtools import costs


def _template(memory) -> dict:
    return {
        "Parameters": {"PredictMemorySize": {"Type": "Number", "Default": 1536}},
        "Resources": {
            "PredictFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "functions/predict/", "MemorySize": memory},
            },
            "BatchFunction": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "functions/batch/"}},
        },
    }


def test_memory_comes_from_the_predict_function():
    assert costs.predict_memory(_template({"Ref": "PredictMemorySize"}))[0] == 1536
    assert costs.predict_memory(_template(2048))[0] == 2048
    no_memory = _template(None)
    del no_memory["Resources"]["PredictFunction"]["Properties"]["MemorySize"]
    assert costs.predict_memory(no_memory)[0] == 128
    with pytest.raises(LookupError):
        costs.predict_memory({"Resources": {}})


def test_per_million_arithmetic():
    unit = costs.per_million(costs.Inputs(1024, "", 0.4, ""))  # billed as 1 ms
    assert unit["lambda_requests"] == pytest.approx(0.20)
    assert unit["lambda_duration"] == pytest.approx(1e6 * 1.0 * 0.001 * 0.0000133334)
    assert unit["api_gateway"] == pytest.approx(3.50)
    assert unit["sm_serverless_memory_gb"] == 1
    assert unit["sm_serverless_compute"] == pytest.approx(1e6 * 0.001 * 0.00002)
    big = costs.per_million(costs.Inputs(2048 + 1, "", 12.2, ""))  # 13 ms, 2049 MB -> 3 GB on SageMaker
    assert big["lambda_duration"] == pytest.approx(1e6 * (2049 / 1024) * 0.013 * 0.0000133334)
    assert big["sm_serverless_memory_gb"] == 3
    month = costs.monthly(costs.Inputs(1024, "", 1, ""), 10e6)
    assert month["lambda_api"] == pytest.approx(10 * (0.20 + 0.0133334 + 3.50))
    assert month["ml.m5.large"] == pytest.approx(0.115 * 730)


@pytest.mark.parametrize(("duration", "billed"), [(0.2, 1), (1.0, 1), (1.01, 2), (37.5, 38)])
def test_lambda_rounds_duration_up_to_the_millisecond(duration, billed):
    assert costs.billed_ms(duration) == billed


def test_warm_duration_is_read_from_the_online_benchmark(tmp_path: Path):
    results = tmp_path / "online.json"
    assert costs.warm_duration_ms(results) is None
    rows = [
        {"case": "LR 1 row", "metric": "x raw predict_proba", "value": 1.1, "target": "<= 1.3", "ok": True},
        {"case": "LR 1 row handler", "metric": "µs median", "value": 310, "target": "", "ok": True},
    ]
    results.write_text(json.dumps({"title": "online", "rows": rows}))
    duration, source = costs.warm_duration_ms(results)
    assert duration == pytest.approx(0.31) and "310" in source


def test_every_price_names_its_source():
    for name, price in costs.PRICES.items():
        assert price.value > 0, name
        assert price.source.startswith("https://"), name
        assert price.quote, name


def test_committed_page_matches_the_template_and_the_code():
    page = (costs.ROOT / "docs" / "costs.md").read_text()
    memory, _ = costs.predict_memory(costs.load_template(costs.TEMPLATE))
    stated = re.search(
        r"has \*\*(\d+) MB\*\* \((.*?)\) on arm64, and a one-row request runs for \*\*([0-9.e+-]+) ms\*\* "
        r"warm \((.*?)\), billed",
        page,
    )
    assert stated, "docs/costs.md has no inputs line: run `python -m devtools.costs`"
    assert int(stated.group(1)) == memory, "the predict function's memory changed: run `python -m devtools.costs`"
    inputs = costs.Inputs(memory, stated.group(2), float(stated.group(3)), stated.group(4))
    assert costs.render(inputs) == page, "docs/costs.md is out of date: run `python -m devtools.costs`"
