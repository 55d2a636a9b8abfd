"""docs/costs.md: the per-request arithmetic (checked against hand-computed figures), the inputs read from
template.yaml and bench results, and the committed page agreeing with the code and the template."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devtools import costs, prices


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


def test_lambda_behind_each_front_door_by_hand():
    # 1M requests, 1024 MB, 0.4 ms billed as 1 ms: $0.20 requests + 1e6 x 1 GB x 0.001 s x $0.0000133334
    lam = 0.20 + 0.0133334
    assert costs.modelops_usd(1e6, "url", 1024, 0.4) == pytest.approx(lam)
    assert costs.modelops_usd(1e6, "http", 1024, 0.4) == pytest.approx(lam + 1.00)
    assert costs.modelops_usd(1e6, "rest", 1024, 0.4) == pytest.approx(lam + 3.50)
    # 2049 MB for 12.2 ms (billed 13 ms), 10M requests
    assert costs.lambda_usd(10e6, 2049, 12.2) == pytest.approx(2.0 + 10e6 * 2049 / 1024 * 0.013 * 0.0000133334)


def test_sagemaker_serverless_needs_a_front_door_and_a_proxy_by_hand():
    compute = 1e6 * 1 * 0.001 * 0.00002  # 1 GB, 1 ms
    data = 1e6 * 1.5 / 1024**2 * 0.016  # 1.5 KB per one-row request
    assert costs.sm_serverless_usd(1e6, None, 1024, 1, 1) == pytest.approx(compute + data)
    # REST API: an AWS integration, no proxy
    assert costs.sm_serverless_usd(1e6, "rest", 1024, 1, 1) == pytest.approx(compute + data + 3.50)
    # function URL: a 128 MB proxy billed 1 + 10 ms, with its own request charge
    proxy = 0.20 + 1e6 * 0.125 * 0.011 * 0.0000133334
    assert costs.sm_serverless_usd(1e6, "url", 1024, 1, 1) == pytest.approx(compute + data + proxy)
    assert costs.sm_serverless_usd(1e6, "http", 1024, 1, 1) == pytest.approx(compute + data + proxy + 1.00)
    # 2049 MB of function memory needs the 3 GB SageMaker size
    assert costs.sm_serverless_usd(1e6, None, 2049, 1, 1) == pytest.approx(3 * compute + data)


def test_rest_crossover_is_where_the_two_cost_the_same():
    fixed = 0.20 / 1e6 - 1.5 / 1024**2 * 0.016
    expected_ms = fixed / (0.00002 - 0.0000133334) * 1000
    cross = costs.rest_crossover_ms(1024)
    assert cross == pytest.approx(expected_ms)
    below, above = int(cross) - 1, int(cross) + 2
    assert costs.sm_serverless_usd(1e6, "rest", 1024, below, 1) < costs.modelops_usd(1e6, "rest", 1024, below)
    assert costs.sm_serverless_usd(1e6, "rest", 1024, above, 1) > costs.modelops_usd(1e6, "rest", 1024, above)


def test_cold_start_modes_by_hand():
    month = 730 * 3600
    assert costs.provisioned_usd(10e6, 2, 1024, 1) == pytest.approx(
        2 * month * 0.0000033334 + 10e6 * 0.0000002 + 10e6 * 0.001 * 0.0000077778
    )
    assert costs.snapstart_usd(10e6, 1024, 1, restores=1000) == pytest.approx(
        2.0 + 10e6 * 0.001 * 0.0000133334 + month * 0.0000015046 + 1000 * 0.0001397998
    )
    assert costs.sm_realtime_usd(1e6, "rest", 1) == pytest.approx(0.05 * 730 + 3.50)
    # 2 instances for 10 of every weekday's hours, 1 otherwise: 1 + 50/168 on average
    assert costs.autoscaled_average(1, 2, 10) == pytest.approx(1 + 50 / 168)
    assert costs.provisioned_usd(10e6, 1 + 50 / 168, 1024, 1) == pytest.approx(
        (1 + 50 / 168) * month * 0.0000033334 + 10e6 * 0.0000002 + 10e6 * 0.001 * 0.0000077778
    )


@pytest.mark.parametrize(("duration", "billed"), [(0.2, 1), (1.0, 1), (1.01, 2), (37.5, 38)])
def test_lambda_rounds_duration_up_to_the_millisecond(duration, billed):
    assert costs.billed_ms(duration) == billed


def test_warm_durations_are_read_from_the_online_benchmark(tmp_path: Path):
    results = tmp_path / "online.json"
    assert costs.warm_durations(results) == {}
    rows = [
        {"case": "hgb 100 rows", "metric": "handler/raw predict_proba (median)", "value": 1.3},
        {"case": "hgb 100 rows", "metric": "handler median us", "value": 2000.0},
        {"case": "lr_pipeline 1 row", "metric": "handler median us", "value": 310},
        {"case": "lr_pipeline 1 row, capture on", "metric": "handler median us", "value": 999},
    ]
    results.write_text(json.dumps({"title": "online", "rows": rows}))
    assert costs.warm_durations(results) == {"hgb 100 rows": pytest.approx(2.0), "lr_pipeline 1 row": 0.31}


def test_every_price_names_its_source_and_unverified_ones_say_so():
    for name, price in prices.PRICES.items():
        assert price.value >= 0, name
        assert price.source.startswith("https://"), name
        assert price.quote and "|" not in price.quote, name  # a "|" would break the markdown table
        assert price.kind in ("aws", "third-party", "unverified"), name
    table = "\n".join(prices.sources_table(["s3_get", "apigw_rest_request"]))
    assert "$0.4 per 1M *unverified*" in table
    assert "$3.5 per 1M |" in table


def test_committed_page_matches_the_template_and_the_code():
    page = costs.OUT.read_text()
    stated = costs.stated_inputs(page)
    assert stated, "docs/costs.md has no inputs comment: run `python -m devtools.costs`"
    memory, _ = costs.predict_memory(costs.load_template(costs.TEMPLATE))
    assert stated.memory_mb == memory, "the predict function's memory changed: run `python -m devtools.costs`"
    assert costs.render(stated) == page, "docs/costs.md is out of date: run `python -m devtools.costs`"


def _amounts(text: str) -> set[str]:
    return set(re.findall(r"\$[0-9][0-9,]*\.[0-9]+", text))


def test_readme_quotes_only_figures_the_pages_state():
    readme = (costs.ROOT / "README.md").read_text()
    section = readme[readme.index("## Costs\n") : readme.index("## Run it locally")]
    batch = readme[readme.index("* **A billion rows.**") : readme.index("* **Drift.**")]
    pages = costs.OUT.read_text() + (costs.ROOT / "docs" / "batch-scale.md").read_text()
    missing = (_amounts(section) | _amounts(batch)) - _amounts(pages)
    assert not missing, f"README states {sorted(missing)}, which docs/costs.md and docs/batch-scale.md do not"
