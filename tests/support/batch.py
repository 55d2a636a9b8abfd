"""Helpers shared by the batch tests: a registered champion, input writers, output readers."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from modelops.batch.config import BatchConfig
from modelops.batch.run import BatchRunner
from modelops.batch.store import Store
from modelops.model.dataset import load_builtin

BUCKET = "modelops-test"
DATE = "2026-03-14"


def features_and_rows(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    data = load_builtin("breast_cancer")
    names = list(data.feature_names)
    X = np.asarray(data.X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return names, np.round(X[rng.integers(0, len(X), size=n)], 4)


def csv_bytes(names: list[str], X: np.ndarray, ids: list[str] | None = None) -> bytes:
    ids = ids or [f"r{i}" for i in range(len(X))]
    lines = ["id," + ",".join(names)] + [
        f"{i}," + ",".join(repr(float(v)) for v in row) for i, row in zip(ids, X, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def jsonl_bytes(names: list[str], X: np.ndarray) -> bytes:
    return b"".join(
        json.dumps({"id": i, **dict(zip(names, map(float, row), strict=True))}).encode() + b"\n"
        for i, row in enumerate(X)
    )


def config(**overrides) -> BatchConfig:
    env = {
        "MODELOPS_DATA_BUCKET": BUCKET,
        "MODELOPS_REGISTRY": f"s3://{BUCKET}/registry",
        "MODELOPS_MODEL_NAME": "breast-cancer",
        "MODELOPS_BATCH_UPSTREAM_MARKER": "",
    }
    return BatchConfig.from_env(env, **overrides)


def runner(s3, **overrides) -> BatchRunner:
    return BatchRunner(config(**overrides), store=Store(BUCKET, s3=s3))


def register_champion(registry, model_dir) -> str:
    m = registry.register(model_dir)
    registry.set_alias(m.name, "champion", m.version)
    return m.version


def put_input(s3, name: str, body: bytes, date: str = DATE, prefix: str = "batch/input") -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{date}/{name}", Body=body)


def read_csv(s3, key: str) -> list[dict[str, str]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


def keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def manifest(s3, date: str = DATE) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"batch/output/{date}/_manifest.json")["Body"].read())


# A training CSV with gaps in 'age' and 'plan' (pandas' missing tokens), none in 'income'.
TRAINING = (
    "age,income,plan,y\n"
    + "".join(
        f"{'NA' if i % 9 == 0 else 20 + i % 50},{1000 + 37 * i},{['a', 'b', 'N/A'][i % 3]},{'yes' if i % 4 else 'no'}\n"
        for i in range(120)
    )
).encode()
