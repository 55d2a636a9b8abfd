"""`modelops batch run|backfill|status`: score run dates' S3 input folders, or show a manifest (or why none)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from modelops.batch.config import BatchConfig
from modelops.batch.dates import parse_run_date
from modelops.batch.run import BatchRunner
from modelops.core.errors import ModelOpsError

from .output import RowProgress, emit_json, key_values, progress, table

EXIT_WAITING = 75  # EX_TEMPFAIL: dependencies not ready, try again later


def _add_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", help="run date YYYY-MM-DD (default: yesterday in the configured time zone)")
    p.add_argument("--bucket", help="data bucket (default: $MODELOPS_DATA_BUCKET)")
    p.add_argument("--input-prefix", help="input prefix (default: $MODELOPS_BATCH_INPUT_PREFIX or batch/input)")
    p.add_argument("--output-prefix", help="output prefix (default: $MODELOPS_BATCH_OUTPUT_PREFIX or batch/output)")
    p.add_argument("--timezone", help="time zone of the default run date (default: $MODELOPS_BATCH_TIMEZONE or UTC)")


def _add_model(p: argparse.ArgumentParser, version: bool = True) -> None:
    p.add_argument("--model", help="model name (default: $MODELOPS_MODEL_NAME)")
    if version:
        p.add_argument("--model-version", help="pin a version (default: the registry's champion)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chunk-rows", type=int, help="rows per chunk (default: $MODELOPS_BATCH_CHUNK_ROWS or 100000)")
    p.add_argument(
        "--score-workers",
        type=int,
        help="threads scoring chunks side by side (default: $MODELOPS_BATCH_SCORE_WORKERS or one per CPU)",
    )
    p.add_argument(
        "--id-columns",
        help="comma-separated id columns (default: $MODELOPS_BATCH_ID_COLUMNS or id); '' for none: each "
        "prediction then starts with its source object and line number",
    )
    p.add_argument("--upstream-marker", help="upstream completion marker, e.g. '{date}/_SUCCESS'; '' for none")
    p.add_argument(
        "--require-previous",
        action="store_true",
        default=None,
        help="also require the previous date's run to have succeeded",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="score a day's S3 input folder; show a run's manifest",
        description="Batch scoring of s3://bucket/<input-prefix>/<date>/ into <output-prefix>/<date>/.",
    )
    bs = p.add_subparsers(dest="batch_command", metavar="ACTION", required=True)

    run = bs.add_parser("run", help="score one run date (skipped if it already succeeded, unless --force)")
    _add_settings(run)
    run.add_argument("--force", action="store_true", help="rerun a date that already succeeded")
    _add_model(run)
    _add_run_options(run)
    run.set_defaults(func=run_cmd)

    backfill = bs.add_parser("backfill", help="run every date of a range in order, stopping at the first that fails")
    _add_settings(backfill)
    backfill.add_argument("--from", dest="first", required=True, help="first run date YYYY-MM-DD")
    backfill.add_argument("--to", dest="last", required=True, help="last run date YYYY-MM-DD (inclusive)")
    backfill.add_argument("--force", action="store_true", help="rerun dates that already succeeded")
    _add_model(backfill)
    _add_run_options(backfill)
    backfill.set_defaults(func=backfill_cmd)

    status = bs.add_parser("status", help="show a run date's manifest, or why there is none")
    _add_settings(status)
    _add_model(status, version=False)
    status.add_argument("--drift-chart", metavar="PNG", help="also draw the run's drift per feature to this PNG file")
    status.set_defaults(func=status_cmd)


def _config(args: argparse.Namespace) -> BatchConfig:
    ids = getattr(args, "id_columns", None)
    chunk_rows = getattr(args, "chunk_rows", None)
    if chunk_rows is not None and chunk_rows <= 0:
        raise ModelOpsError(f"--chunk-rows must be positive, got {chunk_rows}")
    score_workers = getattr(args, "score_workers", None)
    if score_workers is not None and score_workers < 0:
        raise ModelOpsError(f"--score-workers must be 0 (one per CPU) or more, got {score_workers}")
    return BatchConfig.from_env(
        bucket=args.bucket,
        input_prefix=args.input_prefix and args.input_prefix.strip("/"),
        output_prefix=args.output_prefix and args.output_prefix.strip("/"),
        timezone=args.timezone,
        registry=args.registry,
        model_name=getattr(args, "model", None),
        model_version=getattr(args, "model_version", None),
        chunk_rows=chunk_rows,
        score_workers=score_workers,
        id_columns=tuple(c.strip() for c in ids.split(",") if c.strip()) if ids is not None else None,
        upstream_marker=getattr(args, "upstream_marker", None),
        require_previous=getattr(args, "require_previous", None),
    )


def _date(args: argparse.Namespace, runner: BatchRunner) -> str:
    return parse_run_date(args.date, "--date") if args.date else runner.default_date()


def run_cmd(args: argparse.Namespace) -> int:
    runner = BatchRunner(_config(args))
    run_date = _date(args, runner)
    counter = RowProgress(f"run {run_date}")
    if not args.json:
        runner.on_chunk = counter.update
    try:
        result = runner.run(run_date, force=args.force)
    finally:
        counter.done()
    if args.json:
        emit_json(result)
    status = result["status"]
    if status == "waiting":
        if not args.json:
            if "lease" in result:  # another run holds the date: this one stops rather than overlap it
                print(f"run {run_date}: waiting: " + "; ".join(result["waiting_for"]), file=sys.stderr)
            else:
                print(f"run {run_date}: waiting for " + "; ".join(result["waiting_for"]), file=sys.stderr)
        return EXIT_WAITING
    if not args.json:
        if status == "skipped":
            print(f"run {run_date}: skipped, {result['reason']}")
        else:
            _summary(result["manifest"])
    return 0


def backfill_cmd(args: argparse.Namespace) -> int:
    first, last = parse_run_date(args.first, "--from"), parse_run_date(args.last, "--to")
    if first > last:
        raise ModelOpsError(f"--from {first} is after --to {last}")
    days = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1
    dates = [(dt.date.fromisoformat(first) + dt.timedelta(days=i)).isoformat() for i in range(days)]
    runner = BatchRunner(_config(args))
    step = progress("backfill", len(dates))
    rows: list[dict[str, Any]] = []
    code = 0
    for run_date in dates:
        step(run_date)
        try:
            result = runner.run(run_date, force=args.force)
        except ModelOpsError as exc:
            rows.append({"date": run_date, "status": "failed", "detail": str(exc)})
            code = 1
            break
        status = result["status"]
        manifest = result.get("manifest") or {}
        counts = manifest.get("rows") or {}
        detail = result.get("reason") or "; ".join(result.get("waiting_for", []))
        rows.append(
            {
                "date": run_date,
                "status": status,
                "scored": counts.get("scored"),
                "rejected": counts.get("rejected"),
                "detail": detail,
            }
        )
        if status == "waiting":  # later dates may depend on this one: stop, as a scheduler would
            code = EXIT_WAITING
            break
    if args.json:
        emit_json(rows)
    else:
        table(
            rows,
            ["date", "status", "scored", "rejected", "detail"],
            title=f"backfill {first}..{last}: {len(rows)} of {len(dates)} dates run",
        )
    return code


def status_cmd(args: argparse.Namespace) -> int:
    runner = BatchRunner(_config(args))
    run_date = _date(args, runner)
    result = runner.status(run_date)
    if args.drift_chart and result["status"] == "succeeded":
        from .drift_chart import draw_drift

        draw_drift(result["manifest"], args.drift_chart)
        if not args.json:
            print(f"drift chart: {args.drift_chart}")
    if args.json:
        emit_json(result)
    elif result["status"] == "succeeded":
        _summary(result["manifest"])
    else:
        print(f"run {run_date}: no manifest at {result['manifest_key']}")
        for reason in result["reasons"]:
            print(f"  - {reason}")
    return 0 if result["status"] == "succeeded" else 1


def _summary(m: dict[str, Any]) -> None:
    drift = m.get("drift") or {}
    worst = drift.get("max_feature") or {}
    key_values(
        {
            "run_date": m["run_date"],
            "status": m["status"],
            "model": f"{m['model']['name']}/{m['model']['version']}",
            "inputs": len(m["inputs"]),
            "rows read": m["rows"]["read"],
            "rows scored": m["rows"]["scored"],
            "rows rejected": m["rows"]["rejected"],
            "parts / chunks": f"{m['parts']} / {m['chunks']}",
            "predictions": m["outputs"]["predictions"],
            "rejected": m["outputs"]["rejected"],
            "prediction psi": drift.get("prediction_psi"),
            "max feature psi": f"{worst.get('name')} {worst.get('psi')}" if worst else None,
            "seconds": m["timings"]["seconds"],
            "finished_at": m["timings"]["finished_at"],
        }
    )
