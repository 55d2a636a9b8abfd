"""docs/batch-scale.md: the billion-row arithmetic (checked against a hand-computed case), the settings read
from template.yaml and the state machine, and the committed page agreeing with both."""

from __future__ import annotations

import json

import pytest

from devtools import batch_scale as bs


def _inputs(**overrides) -> bs.ScaleInputs:
    base = dict(
        worker_memory_mb=2048,
        worker_timeout_s=900,
        max_concurrency=4,
        item_batching=False,
        part_bytes=1000,
        chunk_rows=100,
        csv_rows_per_s={"lr": 50.0},
        csv_cpu_s_per_m={"lr": 3.0},
        parquet_rows_per_s={},
        startup_s={"lr": 1.0},
    )
    base.update(overrides)
    return bs.ScaleInputs(**base)


def test_one_run_by_hand():
    # 1,000 rows x 10 bytes in parts of 1,000 bytes: 10 parts of 100 rows; 1 s load + 100 / 50 s = 3 s a part;
    # 4 at a time: 3 waves, 9 s. 10 parts x 3 s x 2 GB = 60 GB-s.
    p = bs.plan(1000, 10, 50.0, 1.0, _inputs())
    assert (p.parts, p.rows_per_part, p.part_s, p.concurrency, p.wall_s) == (10, 100, 3.0, 4, 9.0)
    assert p.lambda_usd == pytest.approx(60 * 0.0000133334 + 10 * 0.0000002)
    assert p.sfn_usd == pytest.approx((10 * 2 + 8) * 0.000025)
    assert p.s3_usd == pytest.approx(10 * (4 * 0.0000004 + (4 + 1) * 0.000005))
    assert p.put_rate == pytest.approx(4 * 5 / 3.0)


def test_concurrency_is_capped_by_the_account_and_the_part_count():
    many = bs.plan(1e9, 100, 1e6, 0.0, _inputs(max_concurrency=0))  # unbounded map: 100,000,000 parts
    assert many.concurrency == bs.ACCOUNT_CONCURRENCY
    few = bs.plan(3000, 1, 50.0, 0.0, _inputs(max_concurrency=5000))  # 3 parts
    assert few.concurrency == 3 and few.wall_s == pytest.approx(20.0)


def test_worker_rate_scales_down_to_its_vcpu_share_only():
    assert bs.worker_rows_per_s(100.0, 1769) == pytest.approx(50.0)  # 1 vCPU of the benchmark's 2 cores
    assert bs.worker_rows_per_s(100.0, 10240) == pytest.approx(100.0)  # never above the measured rate


def test_parquet_estimate_swaps_the_csv_parse_for_the_decode():
    # 3 CPU-s per 1M rows as CSV, of which 1.25 is the parse; Parquet decode 0.95: 2.7 CPU-s per 1M rows
    assert bs.parquet_rows_per_s(100.0, 3.0, 0.95) == pytest.approx(100.0 * 3.0 / 2.7)


def test_bench_rates_take_the_largest_size_and_measured_parquet():
    run = {"rows_per_s": 0.0, "cpu_seconds": 0.0}
    results = {
        "details": {
            "modelops lr 1000000": [{**run, "rows_per_s": 1.0, "cpu_seconds": 3.0}],
            "modelops lr 5000000": [{**run, "rows_per_s": 2.0, "cpu_seconds": 10.0}] * 3,
            "pandas lr 5000000": [{**run, "rows_per_s": 9.0, "cpu_seconds": 1.0}],
        },
        "rows": [
            {"case": "lr 5M parquet", "metric": "rows/s", "value": 7.0},
            {"case": "lr 5M pandas parquet", "metric": "rows/s", "value": 99.0},
            {"case": "lr 5M parquet", "metric": "peak RSS MB", "value": 500.0},
        ],
    }
    rates, cpu, parquet = bs.bench_rates(results)
    assert rates == {"lr": 2.0} and cpu == {"lr": pytest.approx(2.0)} and parquet == {"lr": 7.0}


def test_distributed_map_settings_come_from_the_definition():
    definition = json.loads(bs.STATE_MACHINE.read_text())
    template = bs.load_template(bs.TEMPLATE)
    concurrency, batching = bs.distributed_map(definition, template)
    assert concurrency == int(template["Parameters"]["BatchMaxConcurrency"]["Default"]) and batching is False
    with pytest.raises(LookupError):
        bs.distributed_map(definition)  # MaxConcurrencyPath: the number is the template's
    batched = {
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 40,
                "ItemBatcher": {"MaxItemsPerBatch": 10},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}},
            }
        }
    }
    assert bs.distributed_map(batched) == (40, True)
    inline = {"States": {"M": {"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}}}}}
    with pytest.raises(LookupError):
        bs.distributed_map(inline)


def test_committed_page_matches_the_template_the_state_machine_and_the_code():
    page = bs.OUT.read_text()
    stated = bs.stated_inputs(page)
    assert stated, "docs/batch-scale.md has no inputs comment: run `python -m devtools.costs`"
    template = bs.load_template(bs.TEMPLATE)
    memory, timeout, chunk = bs.worker_settings(template)
    concurrency, batching = bs.distributed_map(json.loads(bs.STATE_MACHINE.read_text()), template)
    settings = (memory, timeout, chunk, concurrency, batching)
    assert (
        stated.worker_memory_mb,
        stated.worker_timeout_s,
        stated.chunk_rows,
        stated.max_concurrency,
        stated.item_batching,
    ) == settings, "the batch settings changed: run `python -m devtools.costs`"
    assert bs.render(stated) == page, "docs/batch-scale.md is out of date: run `python -m devtools.costs`"


def test_startup_is_the_online_benchmarks_cold_init_wall_time():
    rows = [
        {"case": f"{online} cold init", "metric": "handler init wall ms (median)", "value": 1500.0}
        for online in bs.MODELS.values()
    ]
    assert set(bs.startup_seconds({"rows": rows}).values()) == {1.5}
    with pytest.raises(LookupError, match="cold init"):
        bs.startup_seconds({"rows": rows[1:]})
