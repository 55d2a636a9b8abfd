"""Publish a run attempt: complete its open prediction uploads, merge rejects, write the manifest last.

Order matters for readers of the output folder: an earlier manifest is removed first, stale files of
earlier attempts are removed, each part's upload is completed (an atomic, copy-free publish of the whole
object), and only then is the manifest written. Downstream jobs read the manifest, so they never see a
mix of attempts or a partial result. Uploads left open by failed or retried attempts are aborted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson

from ..core.errors import ConflictError, ModelOpsError
from ..model.versioning import utc_now_iso
from ..monitoring.drift import DriftAccumulator, psi
from .config import BatchConfig
from .part import PREDICTION, REJECTED_HEADER, part_keys
from .store import ObjectStore
from .writer import MultipartWriter, abort_uploads


def final_keys(config: BatchConfig, run_date: str, count: int) -> tuple[list[str], str]:
    folder = config.output_folder(run_date)
    return [folder + f"predictions/part-{i:05d}.csv" for i in range(count)], folder + "rejected.csv"


def load_stats(config: BatchConfig, store: ObjectStore, run: dict[str, Any], count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        key = part_keys(config, run["run_date"], run["attempt"], i)["stats"]
        if not store.exists(key):
            raise ModelOpsError(
                f"run {run['run_date']} attempt {run['attempt']}: part {i} has not finished; nothing was committed"
            )
        out.append(orjson.loads(store.get(key)[0]))
    return out


def line_offsets(stats: list[dict[str, Any]]) -> dict[int, int]:
    """Lines before each part within its object, so rejected line numbers are absolute."""
    offsets: dict[int, int] = {}
    seen: dict[Any, int] = {}
    for s in stats:
        offsets[s["index"]] = seen.get(s["key"], 0)
        seen[s["key"]] = seen.get(s["key"], 0) + s["lines"]
    return offsets


def merge_rejected(store: ObjectStore, stats: list[dict[str, Any]], target: str) -> None:
    offsets = line_offsets(stats)
    with MultipartWriter(store, target) as out:
        out.write(REJECTED_HEADER)
        for s in stats:
            body, _ = store.get(s["rejected_key"])
            if s["rows_rejected"] == 0:
                continue
            offset = offsets[s["index"]]
            rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))[1:]
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerows([obj, int(line) + offset, reason] for obj, line, reason in rows)
            out.write(buf.getvalue().encode())


def drift_summary(baseline: dict[str, Any], features: list[str], stats: list[dict[str, Any]]) -> dict[str, Any]:
    """PSI per feature and of the predictions. A feature whose drift is not measured is absent from
    feature_psi and listed in not_measured with the reason; prediction_psi is null when not measured."""
    summary: dict[str, Any] = {"feature_psi": {}, "prediction_psi": None}
    acc = DriftAccumulator(baseline, features)
    for s in stats:
        if s["drift"]:
            acc.merge({n: s["drift"][n] for n in acc.names if n in s["drift"]})
    summary["feature_psi"] = {n: round(v, 6) for n, v in acc.psi_by_feature().items()}
    not_measured = acc.not_measured()
    if not_measured:
        summary["not_measured"] = not_measured
    if PREDICTION in baseline:
        counts = [s["prediction_drift"] for s in stats if s.get("prediction_drift")]
        if counts:
            total = [sum(c) for c in zip(*counts, strict=True)]
            if sum(total) > 0 and sum(baseline[PREDICTION]["counts"]) > 0:
                summary["prediction_psi"] = round(psi(baseline[PREDICTION]["counts"], total), 6)
    if summary["feature_psi"]:
        worst = max(summary["feature_psi"], key=summary["feature_psi"].get)
        summary["max_feature"] = {"name": worst, "psi": summary["feature_psi"][worst]}
    return summary


def commit(
    config: BatchConfig,
    store: ObjectStore,
    run: dict[str, Any],
    parts: list[dict[str, Any]],
    baseline: dict[str, Any],
    features: list[str],
    started_at: str,
    started: float,
    skipped: list[dict[str, Any]] | None = None,
    verify_lease: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """skipped: input objects that were not scored (zero bytes), listed in the manifest with the reason.
    verify_lease: raises unless this run still holds its date (batch.lease); called right before the manifest
    is written, after which every output is checked to still be the object this commit published."""
    import time

    run_date = run["run_date"]
    stats = load_stats(config, store, run, len(parts))
    inputs: dict[str, dict[str, Any]] = {}
    for p in parts:
        item = {"key": p["key"], "etag": p["etag"], "size": p["size"], "format": p["format"]}
        if p.get("compression"):
            item["compression"] = p["compression"]
        inputs.setdefault(p["key"], item)
    skipped = list(skipped or [])
    for s in stats:
        if s.get("empty"):
            entry = inputs[s["key"]]
            skipped.append({**entry, "reason": "no data after decompression"})
    for item in [*inputs.values(), *skipped]:
        now = store.head(item["key"])
        if now is None or now.etag != item["etag"]:
            raise ModelOpsError(
                f"{store.uri(item['key'])} changed or disappeared during the run; nothing was committed, rerun the date"
            )
    manifest_key = config.manifest_key(run_date)
    if store.exists(manifest_key):
        if not run.get("force"):
            raise ConflictError(f"run {run_date} was committed by another run in the meantime")
        store.delete([manifest_key])
    predictions, rejected = final_keys(config, run_date, len(parts))
    folder = config.output_folder(run_date)
    keep = set(predictions) | {rejected}
    lease = config.lease_key(run_date)  # this run's hold on the date, released after the commit
    stale = [o.key for o in store.list(folder) if o.key not in keep | {lease} and "/_attempts/" not in o.key]
    if stale:
        store.delete(stale)
    for s, target in zip(stats, predictions, strict=True):
        upload = s["predictions_upload"]
        if upload["key"] != target:
            raise ModelOpsError(f"part {s['index']} wrote to {upload['key']}, expected {target}")
        store.complete_upload(target, upload["upload_id"], upload["parts"])
    merge_rejected(store, stats, rejected)
    published = {key: store.head(key) for key in [*predictions, rejected]}

    rows = {
        "read": sum(s["rows_read"] for s in stats),
        "scored": sum(s["rows_scored"] for s in stats),
        "rejected": sum(s["rows_rejected"] for s in stats),
    }
    values: dict[str, int] = {}
    for s in stats:
        for name, count in (s.get("warnings") or {}).get("values", {}).items():
            values[name] = values.get(name, 0) + count
    warnings = {
        "rows": sum((s.get("warnings") or {}).get("rows", 0) for s in stats),
        "values": dict(sorted(values.items())),
    }
    manifest = {
        "run_date": run_date,
        "status": "succeeded",
        "attempt": run["attempt"],
        "forced": bool(run.get("force")),
        "model": run["model"],
        "inputs": list(inputs.values()),
        "skipped_inputs": sorted(skipped, key=lambda i: i["key"]),
        "outputs": {"predictions": predictions, "rejected": rejected},
        "rows": rows,
        "warnings": warnings,
        "parts": len(parts),
        "chunks": sum(s["chunks"] for s in stats),
        "peak_chunk_rows": max((s["peak_rows"] for s in stats), default=0),
        "drift": drift_summary(baseline, features, stats),
        "timings": {
            "started_at": started_at,
            "finished_at": utc_now_iso(),
            "seconds": round(time.time() - started, 3),
            "part_seconds": round(sum(s["seconds"] for s in stats), 3),
        },
    }
    if verify_lease is not None:
        verify_lease()
    for key, obj in published.items():  # the manifest names only what this attempt published
        now = store.head(key)
        if obj is None or now is None or now.etag != obj.etag:
            raise ConflictError(
                f"{store.uri(key)} was replaced by another run during the commit; nothing was committed"
            )
    store.put(manifest_key, orjson.dumps(manifest, option=orjson.OPT_INDENT_2), if_none_match=True)
    abort_uploads(store, folder, keep=set())
    attempts = [o.key for o in store.list(folder + "_attempts/")]
    if attempts:
        store.delete(attempts)
    return manifest
